#include "squall/net/iostream.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <regex>

#include "net/sockaddr.hpp"

namespace squall::net {

// --- errors -----------------------------------------------------------------------

namespace {

std::string describe(const std::exception_ptr& e) {
  if (!e) return "Stream is closed";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return std::string("Stream is closed: ") + ex.what();
  } catch (...) {
    return "Stream is closed: unknown error";
  }
}

}  // namespace

StreamClosedError::StreamClosedError(std::exception_ptr real_error)
    : Error(describe(real_error)), real_error_(std::move(real_error)) {}

StreamIOError::StreamIOError(int err, const std::string& what)
    : Error(what + ": " + std::strerror(err)), code_(err, std::system_category()) {}

// --- helpers ------------------------------------------------------------------------

/// Marks a stack frame that must stop touching the stream if a resumed
/// coroutine destroys it. Frames nest; a destruction is reported outward.
struct DestroyGuard {
  explicit DestroyGuard(BaseIOStream* s) noexcept : stream(s), previous(s->destroyed_flag_) {
    s->destroyed_flag_ = &destroyed;
  }
  ~DestroyGuard() {
    if (destroyed) {
      if (previous) *previous = true;
    } else {
      stream->destroyed_flag_ = previous;
    }
  }
  DestroyGuard(const DestroyGuard&) = delete;
  DestroyGuard& operator=(const DestroyGuard&) = delete;
  BaseIOStream* stream;
  bool* previous;
  bool destroyed = false;
};

namespace {

// Input buffers of the standard size are recycled per thread, so a busy
// keep-alive connection does not call malloc for every request.
constexpr std::size_t kBufferSize = 16 * 1024;
constexpr std::size_t kMinReadSpace = 4 * 1024;
constexpr std::size_t kMaxPooledBuffers = 256;
constexpr int kMaxIov = 64;

struct BufferPool {
  std::vector<std::unique_ptr<char[]>> free;
};
thread_local BufferPool tls_buffers;

std::unique_ptr<char[]> take_buffer(std::size_t size) {
  if (size == kBufferSize && !tls_buffers.free.empty()) {
    auto b = std::move(tls_buffers.free.back());
    tls_buffers.free.pop_back();
    return b;
  }
  return std::make_unique_for_overwrite<char[]>(size);
}

void give_buffer(std::unique_ptr<char[]> b, std::size_t size) {
  if (size == kBufferSize && tls_buffers.free.size() < kMaxPooledBuffers) tls_buffers.free.push_back(std::move(b));
}

Future<void> ready_void() {
  thread_local Future<void> ready = make_ready_future();
  return ready;
}

template <class T>
Future<T> closed_future(const std::exception_ptr& cause) {
  auto f = make_exception_future<T>(std::make_exception_ptr(StreamClosedError(cause)));
  (void)f.exception();  // see close(): not worth a log if nobody looks
  return f;
}

IOResult from_errno(ssize_t n, int err) {
  if (n > 0) return IOResult::bytes_moved(static_cast<std::size_t>(n));
  if (n == 0) return IOResult::eof();
  if (err == EAGAIN || err == EWOULDBLOCK) return IOResult::would_block();
  return IOResult::failed(err);
}

}  // namespace

struct BaseIOStream::Regex {
  std::regex re;
};
void BaseIOStream::RegexDeleter::operator()(Regex* r) const noexcept { std::default_delete<Regex>()(r); }

// --- lifetime -----------------------------------------------------------------------

BaseIOStream::BaseIOStream(UniqueFd fd, StreamOptions options)
    : fd_(std::move(fd)), loop_(&IOLoop::current()), options_(options) {
  int flags = ::fcntl(fd_.get(), F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
  // Optimistic: try the syscall first; EAGAIN clears the flag and the
  // next edge sets it again.
  readable_ = true;
  writable_ = true;
}

BaseIOStream::~BaseIOStream() {
  if (destroyed_flag_) *destroyed_flag_ = true;
  destroyed_flag_ = nullptr;
  close();
  if (read_buffer_.storage) give_buffer(std::move(read_buffer_.storage), read_buffer_.capacity);
}

void BaseIOStream::register_fd() {
  loop_->add_handler(fd_.get(), IOLoop::READ | IOLoop::WRITE | IOLoop::PEER_CLOSED | IOLoop::EDGE,
                     [this](int fd, std::uint32_t events) { handle_events(fd, events); });
  registered_ = true;
}

void BaseIOStream::close(std::exception_ptr error) {
  if (closed_) return;
  loop_->assert_in_loop_thread();
  closed_ = true;
  if (!error_) error_ = std::move(error);
  before_close();
  if (registered_) {
    loop_->remove_handler(fd_.get());
    registered_ = false;
  }
  fd_.reset();

  // Take everything that must be resolved, then resolve it without touching
  // the stream again: a resumed coroutine may destroy it.
  PendingRead read = std::move(read_);
  read_ = PendingRead{};
  std::string rest;
  if (read.kind == ReadKind::kUntilClose) {
    rest.assign(buffered());
    read_buffer_.begin = read_buffer_.end = 0;
  }
  std::vector<WriteWaiter> waiters;
  for (std::size_t i = write_waiter_head_; i < write_waiters_.size(); ++i) waiters.push_back(std::move(write_waiters_[i]));
  write_waiters_.clear();
  write_waiter_head_ = 0;
  std::vector<std::pair<Future<void>, std::exception_ptr>> extra;
  collect_pending(extra);
  write_chunks_.clear();
  write_head_ = write_offset_ = write_queued_ = 0;
  // Unread input stays: reads after the close are still served from it
  // (output of a process that exited before anyone read it).
  release_buffer_if_empty();
  schedule_close_callback();
  std::exception_ptr cause = error_;

  // Like Tornado, the failure is marked retrieved: a fire-and-forget write
  // on a connection that went away is not worth an error log.
  auto fail = [&](auto& future) {
    future.set_exception(std::make_exception_ptr(StreamClosedError(cause)));
    (void)future.exception();
  };
  if (read.text.valid()) {
    read.text.clear_cancel_handler();
    if (read.kind == ReadKind::kUntilClose && (!cause || !rest.empty())) {
      read.text.set_result(std::move(rest));
    } else {
      fail(read.text);
    }
  }
  if (read.count.valid()) {
    read.count.clear_cancel_handler();
    fail(read.count);
  }
  if (read.more.valid()) {
    read.more.clear_cancel_handler();
    fail(read.more);
  }
  for (auto& w : waiters) {
    if (!w.future.done()) fail(w.future);
  }
  for (auto& [future, why] : extra) {
    if (future.done()) continue;
    if (why) {
      future.set_exception(why);
      (void)future.exception();
    } else {
      fail(future);
    }
  }
}

UniqueFd BaseIOStream::detach() {
  loop_->assert_in_loop_thread();
  if (closed_) throw InvalidStateError("detach: the stream is closed");
  if (reading() || writing() || read_buffer_.size() > 0) {
    throw InvalidStateError("detach: the stream has a pending operation or buffered input");
  }
  if (registered_) {
    loop_->remove_handler(fd_.get());
    registered_ = false;
  }
  UniqueFd fd = std::move(fd_);
  close();
  return fd;
}

void BaseIOStream::close_with(const IOResult& r, const char* op) {
  if (!r.message.empty()) {
    close(std::make_exception_ptr(Error(std::string(op) + ": " + r.message)));
  } else {
    close(std::make_exception_ptr(StreamIOError(r.error, op)));
  }
}

void BaseIOStream::schedule_close_callback() {
  if (!close_callback_) return;
  // Deferred (as Tornado does) so it never runs inside the caller's stack;
  // it owns nothing of the stream, so the stream may be gone by then.
  loop_->add_callback([cb = std::move(close_callback_)]() mutable { cb(); });
  close_callback_ = nullptr;
}

// --- events ---------------------------------------------------------------------------

void BaseIOStream::handle_events(int, std::uint32_t events) {
  DestroyGuard guard(this);
  if (!io_ready()) {
    on_handshake_event(events);
    return;
  }
  if (events & (EPOLLOUT | EPOLLERR)) writable_ = true;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closed_ = true;

  if (write_queued_ > 0) {
    flush();
    if (guard.destroyed || closed_) return;
  }
  if (reading()) {
    service_read();
    return;
  }
  if (peer_closed_) {
    // Nothing asked for input, but the peer hung up: read what it sent
    // before leaving, so the close is noticed and reported now.
    while (!closed_ && !eof_ && fill_buffer()) {
      if (read_buffer_.size() >= options_.max_buffer_size) break;
    }
    if (eof_ && !closed_) close();
    return;
  }
  if ((events & EPOLLERR) && !closed_) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
      close(std::make_exception_ptr(StreamIOError(err, "socket error")));
    }
  }
}

void BaseIOStream::resume_io() {
  DestroyGuard guard(this);
  if (write_queued_ > 0) {
    flush();
    if (guard.destroyed || closed_) return;
  }
  if (reading()) service_read();
}

// --- reading --------------------------------------------------------------------------

void BaseIOStream::begin_read(ReadKind kind) {
  loop_->assert_in_loop_thread();
  if (reading()) throw InvalidStateError("Already reading: only one read may be pending on a stream");
  read_.kind = kind;
}

Future<std::string> BaseIOStream::read_bytes(std::size_t n, bool partial) {
  if (closed_ && read_buffer_.size() == 0) return closed_future<std::string>(error_);
  begin_read(ReadKind::kBytes);
  read_.target = n;
  read_.partial = partial;
  Future<std::string> f;
  read_.text = f;
  arm_cancel();
  if (n == 0) {
    read_ = PendingRead{};
    f.clear_cancel_handler();
    f.set_result(std::string());
    return f;
  }
  service_read();
  return f;
}

Future<std::string> BaseIOStream::read_until(std::string delimiter, std::optional<std::size_t> max_bytes) {
  if (closed_ && read_buffer_.size() == 0) return closed_future<std::string>(error_);
  if (delimiter.empty()) throw std::invalid_argument("read_until: empty delimiter");
  begin_read(ReadKind::kUntil);
  read_.delimiter = std::move(delimiter);
  read_.max_bytes = max_bytes.value_or(SIZE_MAX);
  read_.scanned = 0;
  Future<std::string> f;
  read_.text = f;
  arm_cancel();
  service_read();
  return f;
}

Future<std::string> BaseIOStream::read_until_regex(const std::string& pattern, std::optional<std::size_t> max_bytes) {
  if (closed_ && read_buffer_.size() == 0) return closed_future<std::string>(error_);
  std::unique_ptr<Regex, RegexDeleter> re(new Regex{std::regex(pattern)});  // throws std::regex_error on a bad pattern
  begin_read(ReadKind::kRegex);
  read_.regex = std::move(re);
  read_.max_bytes = max_bytes.value_or(SIZE_MAX);
  Future<std::string> f;
  read_.text = f;
  arm_cancel();
  service_read();
  return f;
}

Future<std::string> BaseIOStream::read_until_close() {
  if (closed_) {
    // Whatever arrived before the close is still the caller's.
    std::string rest(buffered());
    consume(rest.size());
    if (rest.empty() && error_) return closed_future<std::string>(error_);
    return make_ready_future(std::move(rest));
  }
  begin_read(ReadKind::kUntilClose);
  Future<std::string> f;
  read_.text = f;
  arm_cancel();
  service_read();
  return f;
}

Future<std::size_t> BaseIOStream::read_into(std::span<char> buffer, bool partial) {
  if (closed_ && read_buffer_.size() == 0) return closed_future<std::size_t>(error_);
  begin_read(ReadKind::kInto);
  read_.into = buffer;
  read_.into_filled = 0;
  read_.target = buffer.size();
  read_.partial = partial;
  Future<std::size_t> f;
  read_.count = f;
  arm_cancel();
  service_read();
  return f;
}

Future<void> BaseIOStream::read_more() {
  if (closed_) return closed_future<void>(error_);
  begin_read(ReadKind::kMore);
  read_.target = read_buffer_.size();  // resolves once more than this is buffered
  Future<void> f;
  read_.more = f;
  arm_cancel();
  service_read();
  return f;
}

void BaseIOStream::arm_cancel() noexcept {
  // A cancelled read gives up its slot; buffered bytes stay for the next read.
  Callback on_cancel = [this] {
    read_ = PendingRead{};
    release_buffer_if_empty();
  };
  if (read_.text.valid()) read_.text.set_cancel_handler(std::move(on_cancel));
  else if (read_.count.valid()) read_.count.set_cancel_handler(std::move(on_cancel));
  else if (read_.more.valid()) read_.more.set_cancel_handler(std::move(on_cancel));
}

void BaseIOStream::consume(std::size_t n) noexcept {
  n = std::min(n, read_buffer_.size());
  read_buffer_.begin += n;
  if (read_buffer_.begin == read_buffer_.end) read_buffer_.begin = read_buffer_.end = 0;
  if (!reading()) release_buffer_if_empty();
}

void BaseIOStream::release_buffer_if_empty() noexcept {
  if (read_buffer_.storage && read_buffer_.size() == 0) {
    give_buffer(std::move(read_buffer_.storage), read_buffer_.capacity);
    read_buffer_ = ReadBuffer{};
  }
}

void BaseIOStream::ensure_space(std::size_t want) {
  ReadBuffer& b = read_buffer_;
  if (!b.storage) {
    std::size_t cap = std::max(kBufferSize, want);
    b.storage = take_buffer(cap);
    b.capacity = cap;
    b.begin = b.end = 0;
    return;
  }
  if (b.capacity - b.end >= want) return;
  if (b.begin > 0 && b.capacity - b.size() >= want) {
    // Compact in place: the data moves to the front, no new allocation.
    std::memmove(b.storage.get(), b.storage.get() + b.begin, b.size());
    b.end -= b.begin;
    b.begin = 0;
    return;
  }
  std::size_t cap = std::max(b.capacity * 2, b.size() + want);
  auto bigger = std::make_unique_for_overwrite<char[]>(cap);
  std::memcpy(bigger.get(), b.storage.get() + b.begin, b.size());
  give_buffer(std::move(b.storage), b.capacity);
  b.end = b.size();
  b.begin = 0;
  b.storage = std::move(bigger);
  b.capacity = cap;
}

bool BaseIOStream::fill_buffer() {
  if (closed_ || (!readable_ && !has_pending_input())) return false;
  // Large reads (read_bytes of a big body) ask for their size at once.
  std::size_t want = kMinReadSpace;
  if (read_.kind == ReadKind::kBytes && read_.target > read_buffer_.size()) {
    want = std::min(read_.target - read_buffer_.size(), options_.read_chunk_size);
  } else if (read_buffer_.capacity >= kBufferSize && read_buffer_.capacity - read_buffer_.size() < kMinReadSpace) {
    want = std::min(read_buffer_.capacity, options_.read_chunk_size);
  }
  ensure_space(std::max(want, kMinReadSpace));
  ReadBuffer& b = read_buffer_;
  IOResult r = read_from_fd(b.storage.get() + b.end, b.capacity - b.end);
  switch (r.kind) {
    case IOResult::kBytes:
      b.end += r.bytes;
      return true;
    case IOResult::kEof:
      eof_ = true;
      return false;
    case IOResult::kWouldBlock:
      readable_ = false;
      // Nothing came: an idle connection waiting for its next request must
      // not sit on a buffer (the pool keeps it warm for the next reader).
      release_buffer_if_empty();
      return false;
    case IOResult::kError:
      close_with(r, "read");
      return false;
  }
  return false;
}

std::size_t BaseIOStream::satisfied_by_buffer() {
  std::string_view data = buffered();
  switch (read_.kind) {
    case ReadKind::kBytes:
      if (read_.partial) return std::min(data.size(), read_.target);
      return data.size() >= read_.target ? read_.target : 0;
    case ReadKind::kUntil: {
      const std::string& d = read_.delimiter;
      // Resume where the last search stopped: linear in the input overall.
      std::size_t from = read_.scanned >= d.size() ? read_.scanned - (d.size() - 1) : 0;
      std::size_t pos = data.find(d, from);
      if (pos != std::string_view::npos) {
        std::size_t n = pos + d.size();
        if (n > read_.max_bytes) throw UnsatisfiableReadError("delimiter not found within max_bytes");
        return n;
      }
      read_.scanned = data.size();
      if (data.size() > read_.max_bytes) throw UnsatisfiableReadError("delimiter not found within max_bytes");
      return 0;
    }
    case ReadKind::kRegex: {
      std::cmatch m;
      if (std::regex_search(data.data(), data.data() + data.size(), m, read_.regex->re)) {
        std::size_t n = static_cast<std::size_t>(m.position(0) + m.length(0));
        if (n > read_.max_bytes) throw UnsatisfiableReadError("pattern not found within max_bytes");
        return n;
      }
      if (data.size() > read_.max_bytes) throw UnsatisfiableReadError("pattern not found within max_bytes");
      return 0;
    }
    case ReadKind::kMore:
      return data.size() > read_.target ? data.size() : 0;
    case ReadKind::kUntilClose:
    case ReadKind::kInto:
    case ReadKind::kNone:
      return 0;
  }
  return 0;
}

void BaseIOStream::service_read() {
  if (!closed_ && !io_ready()) return;  // resume_io() comes back here
  DestroyGuard guard(this);
  for (;;) {
    if (read_.kind == ReadKind::kInto) {
      // Buffered bytes first, then straight into the caller's memory.
      std::size_t want = read_.target - read_.into_filled;
      std::size_t take = std::min(want, read_buffer_.size());
      if (take > 0) {
        std::memcpy(read_.into.data() + read_.into_filled, buffered().data(), take);
        read_.into_filled += take;
        read_buffer_.begin += take;
        if (read_buffer_.begin == read_buffer_.end) read_buffer_.begin = read_buffer_.end = 0;
      }
      bool done = read_.into_filled == read_.target || (read_.partial && read_.into_filled > 0);
      if (!done && closed_) {
        fail_read();
        return;
      }
      if (!done && !eof_ && !closed_ && read_buffer_.size() == 0 && (readable_ || has_pending_input())) {
        IOResult r = read_from_fd(read_.into.data() + read_.into_filled, read_.target - read_.into_filled);
        if (r.kind == IOResult::kBytes) {
          read_.into_filled += r.bytes;
          continue;
        }
        if (r.kind == IOResult::kWouldBlock) readable_ = false;
        if (r.kind == IOResult::kEof) eof_ = true;
        if (r.kind == IOResult::kError) {
          close_with(r, "read");
          return;
        }
      }
      if (done) {
        std::size_t n = read_.into_filled;
        Future<std::size_t> f = std::move(read_.count);
        read_ = PendingRead{};
        release_buffer_if_empty();
        f.clear_cancel_handler();
        f.set_result(n);  // last: may destroy the stream
        return;
      }
      if (eof_) {
        close();
        return;
      }
      return;  // wait for the next edge
    }

    std::size_t n;
    try {
      n = satisfied_by_buffer();
    } catch (const UnsatisfiableReadError&) {
      close(std::current_exception());
      return;
    }
    if (n > 0) {
      if (read_.kind == ReadKind::kMore) {
        Future<void> f = std::move(read_.more);
        read_ = PendingRead{};
        f.clear_cancel_handler();
        f.set_result();
        return;
      }
      std::string value(buffered().substr(0, n));
      read_buffer_.begin += n;
      if (read_buffer_.begin == read_buffer_.end) read_buffer_.begin = read_buffer_.end = 0;
      Future<std::string> f = std::move(read_.text);
      read_ = PendingRead{};
      release_buffer_if_empty();
      f.clear_cancel_handler();
      f.set_result(std::move(value));  // last: may destroy the stream
      return;
    }
    if (closed_) {
      fail_read();  // the buffer cannot satisfy it and no more will come
      return;
    }
    if (eof_) {
      close();  // read_until_close resolves with the rest; others fail
      return;
    }
    if (read_buffer_.size() >= options_.max_buffer_size) {
      close(std::make_exception_ptr(UnsatisfiableReadError("Reached maximum read buffer size")));
      return;
    }
    if (!fill_buffer()) {
      if (guard.destroyed || closed_) return;
      if (eof_) continue;  // let the pending read see what is left
      return;              // would block: wait for the next edge
    }
  }
}

void BaseIOStream::fail_read() {
  PendingRead read = std::move(read_);
  read_ = PendingRead{};
  release_buffer_if_empty();
  auto error = std::make_exception_ptr(StreamClosedError(error_));
  if (read.text.valid()) {
    read.text.clear_cancel_handler();
    read.text.set_exception(error);
  } else if (read.count.valid()) {
    read.count.clear_cancel_handler();
    read.count.set_exception(error);
  } else if (read.more.valid()) {
    read.more.clear_cancel_handler();
    read.more.set_exception(error);
  }
}

// --- writing ----------------------------------------------------------------------------

Future<void> BaseIOStream::write(std::string data) {
  Chunk c;
  c.owned = std::move(data);
  return queue_write(std::move(c));
}

Future<void> BaseIOStream::write(std::shared_ptr<const std::string> data) {
  Chunk c;
  c.shared = std::move(data);
  return queue_write(std::move(c));
}

Future<void> BaseIOStream::queue_write(Chunk chunk) {
  loop_->assert_in_loop_thread();
  if (closed_) return closed_future<void>(error_);
  std::size_t size = chunk.view().size();
  if (size == 0) return ready_void();
  if (options_.max_write_buffer_size && write_queued_ + size > options_.max_write_buffer_size) {
    close(std::make_exception_ptr(StreamBufferFullError("Reached maximum write buffer size")));
    return closed_future<void>(error_);
  }
  write_chunks_.push_back(std::move(chunk));
  write_queued_ += size;
  bytes_queued_ += size;
  if (write_waiters_.size() == write_waiter_head_ && !in_flush_ && writable_ && io_ready()) {
    flush();
    if (closed_) return closed_future<void>(error_);
    if (bytes_written_ >= bytes_queued_) return ready_void();
  }
  Future<void> f;
  write_waiters_.push_back(WriteWaiter{bytes_queued_, f});
  if (!in_flush_ && writable_ && io_ready()) flush();
  return f;
}

void BaseIOStream::flush() {
  if (in_flush_ || closed_ || !io_ready()) return;
  DestroyGuard guard(this);
  in_flush_ = true;
  for (;;) {
    while (write_queued_ > 0 && writable_) {
      iovec iov[kMaxIov];
      int count = 0;
      for (std::size_t i = write_head_; i < write_chunks_.size() && count < kMaxIov; ++i) {
        std::string_view v = write_chunks_[i].view();
        if (i == write_head_) v.remove_prefix(write_offset_);
        iov[count].iov_base = const_cast<char*>(v.data());
        iov[count].iov_len = v.size();
        ++count;
      }
      IOResult r = write_to_fd(iov, count);
      if (r.kind == IOResult::kWouldBlock) {
        writable_ = false;
        break;
      }
      if (r.kind != IOResult::kBytes) {
        in_flush_ = false;
        close_with(r, "write");
        return;
      }
      write_queued_ -= r.bytes;
      bytes_written_ += r.bytes;
      std::size_t left = r.bytes;
      while (left > 0) {
        std::size_t chunk_left = write_chunks_[write_head_].view().size() - write_offset_;
        if (left >= chunk_left) {
          left -= chunk_left;
          write_chunks_[write_head_] = Chunk{};  // release the memory now
          ++write_head_;
          write_offset_ = 0;
        } else {
          write_offset_ += left;
          left = 0;
        }
      }
    }
    if (write_queued_ == 0) {
      // Give the capacity back too: thousands of idle connections should
      // not each keep a vector sized for their busiest moment.
      write_chunks_ = {};
      write_head_ = write_offset_ = 0;
    }
    bool resolved = false;
    while (write_waiter_head_ < write_waiters_.size() && write_waiters_[write_waiter_head_].until <= bytes_written_) {
      Future<void> f = std::move(write_waiters_[write_waiter_head_].future);
      ++write_waiter_head_;
      f.set_result();  // may resume a writer, which may write more or destroy us
      if (guard.destroyed) return;
      resolved = true;
    }
    if (write_waiter_head_ == write_waiters_.size()) {
      write_waiters_ = {};
      write_waiter_head_ = 0;
    }
    if (closed_ || !resolved || write_queued_ == 0 || !writable_) break;
  }
  in_flush_ = false;
}

// --- IOStream ------------------------------------------------------------------------------

IOStream::IOStream(UniqueFd socket, StreamOptions options) : BaseIOStream(std::move(socket), options) {
  register_fd();
}

IOStream::~IOStream() = default;

IOResult IOStream::read_from_fd(char* buf, std::size_t n) {
  for (;;) {
    ssize_t got = ::recv(fd_.get(), buf, n, 0);
    if (got < 0 && errno == EINTR) continue;
    return from_errno(got, errno);
  }
}

IOResult IOStream::write_to_fd(const iovec* iov, int count) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(count);
  for (;;) {
    // MSG_NOSIGNAL: a reset peer is an EPIPE error, not a SIGPIPE.
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return from_errno(n, errno);
  }
}

void IOStream::set_nodelay(bool on) {
  int v = on ? 1 : 0;
  // Fails harmlessly on non-TCP sockets (unix sockets).
  ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v);
}

std::string IOStream::peer_name() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (closed() || ::getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return format_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
}

// --- PipeIOStream ----------------------------------------------------------------------------

PipeIOStream::PipeIOStream(UniqueFd pipe, StreamOptions options) : BaseIOStream(std::move(pipe), options) {
  register_fd();
}

IOResult PipeIOStream::read_from_fd(char* buf, std::size_t n) {
  for (;;) {
    ssize_t got = ::read(fd_.get(), buf, n);
    if (got < 0 && errno == EINTR) continue;
    return from_errno(got, errno);
  }
}

IOResult PipeIOStream::write_to_fd(const iovec* iov, int count) {
  // A pipe has no MSG_NOSIGNAL: block SIGPIPE around the write and swallow
  // the one it raised, so a vanished reader is an EPIPE error only.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n;
  do {
    n = ::writev(fd_.get(), iov, count);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  if (n < 0 && err == EPIPE) {
    timespec zero{};
    ::sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return from_errno(n, err);
}

}  // namespace squall::net
