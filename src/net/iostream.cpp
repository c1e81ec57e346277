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

// Input buffers of the two usual sizes (the default 16 KiB and a 64 KiB
// read_chunk_size read, as read_bytes(65536, partial) asks for) are recycled
// per thread, so a busy connection does not call malloc for every read.
constexpr std::size_t kBufferSize = 16 * 1024;
constexpr std::size_t kLargeBufferSize = 64 * 1024;
constexpr std::size_t kMinReadSpace = 4 * 1024;
constexpr std::size_t kMaxPooledBuffers = 256;      // 4 MiB of 16 KiB buffers
constexpr std::size_t kMaxPooledLargeBuffers = 16;  // 1 MiB of 64 KiB buffers
// read_bytes(n) of at least this much (and not partial) reads straight into
// the string it returns, instead of growing the buffer and copying out.
constexpr std::size_t kDirectReadMin = 64 * 1024;
constexpr std::size_t kMaxPooledWriteQueues = 64;
constexpr int kMaxIov = 64;

// The per-thread caches must stay usable while other thread-locals die: a
// loop destroyed at thread exit may destroy streams after the caches would
// have been. So they are plain arrays (constinit, nothing to destroy); a
// reaper made on first use frees what they hold at thread exit and marks
// them closed, after which everything given back is simply freed.
struct Caches {
  char* small[kMaxPooledBuffers];
  std::size_t small_count;
  char* large[kMaxPooledLargeBuffers];
  std::size_t large_count;
  void* queues[kMaxPooledWriteQueues];  // BaseIOStream::WriteQueue*, emptied
  std::size_t queue_count;
  void (*destroy_queue)(void*) noexcept;
  bool closed;
  bool reaper_armed;
};
constinit thread_local Caches tls_caches{};

struct CacheReaper {
  ~CacheReaper() {
    Caches& c = tls_caches;
    for (std::size_t i = 0; i < c.small_count; ++i) delete[] c.small[i];
    for (std::size_t i = 0; i < c.large_count; ++i) delete[] c.large[i];
    for (std::size_t i = 0; i < c.queue_count; ++i) c.destroy_queue(c.queues[i]);
    c.small_count = c.large_count = c.queue_count = 0;
    c.closed = true;
  }
};
thread_local CacheReaper tls_reaper;

/// True if something may be cached now (arms the reaper on first use).
bool cache_open() noexcept {
  if (tls_caches.closed) return false;
  if (!tls_caches.reaper_armed) [[unlikely]] {
    tls_caches.reaper_armed = true;
    (void)&tls_reaper;  // constructs it, so it runs at thread exit
  }
  return true;
}

std::unique_ptr<char[]> take_buffer(std::size_t size) {
  Caches& c = tls_caches;
  if (size == kBufferSize && c.small_count > 0) return std::unique_ptr<char[]>(c.small[--c.small_count]);
  if (size == kLargeBufferSize && c.large_count > 0) return std::unique_ptr<char[]>(c.large[--c.large_count]);
  return std::make_unique_for_overwrite<char[]>(size);
}

void give_buffer(std::unique_ptr<char[]> b, std::size_t size) {
  Caches& c = tls_caches;
  if (size == kBufferSize && c.small_count < kMaxPooledBuffers && cache_open()) {
    c.small[c.small_count++] = b.release();
  } else if (size == kLargeBufferSize && c.large_count < kMaxPooledLargeBuffers && cache_open()) {
    c.large[c.large_count++] = b.release();
  }
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

template <class T>
detail::FutureState<T>* typed(const detail::StateRef<detail::FutureStateBase>& s) noexcept {
  return static_cast<detail::FutureState<T>*>(s.get());
}

}  // namespace

struct BaseIOStream::Regex {
  std::regex re;
};

// Emptied write queues wait in tls_caches for the next stream that needs
// one (their vectors keep their capacity), so a response that does not fit
// the socket buffer does not cost three allocations.
void BaseIOStream::WriteQueueDeleter::operator()(WriteQueue* q) const noexcept {
  Caches& c = tls_caches;
  if (c.queue_count < kMaxPooledWriteQueues && cache_open()) {
    q->chunks.clear();
    q->waiters.clear();
    q->head = q->offset = q->queued = q->waiter_head = 0;
    q->written = q->enqueued = 0;
    c.destroy_queue = [](void* p) noexcept { delete static_cast<WriteQueue*>(p); };
    c.queues[c.queue_count++] = q;
    return;
  }
  delete q;
}

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
  if (read_kind_ == ReadKind::kRegex) delete static_cast<Regex*>(read_.ptr);
  if (read_buffer_.storage) give_buffer(std::move(read_buffer_.storage), read_buffer_.capacity);
}

void BaseIOStream::register_fd() {
  loop_->add_handler(fd_.get(), IOLoop::READ | IOLoop::WRITE | IOLoop::PEER_CLOSED | IOLoop::EDGE,
                     [this](int fd, std::uint32_t events) { handle_events(fd, events); });
  registered_ = true;
}

detail::StateRef<detail::FutureStateBase> BaseIOStream::take_read() noexcept {
  detail::StateRef<detail::FutureStateBase> f = std::move(read_.future);
  if (read_kind_ == ReadKind::kRegex) delete static_cast<Regex*>(read_.ptr);
  read_kind_ = ReadKind::kNone;
  read_partial_ = false;
  read_.target = 0;
  read_.done = 0;
  read_.ptr = nullptr;
  read_.text = std::string();
  if (f) f->clear_cancel_handler();
  return f;
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
  return_direct_bytes();
  ReadKind kind = read_kind_;
  detail::StateRef<detail::FutureStateBase> read = take_read();
  std::string rest;
  if (kind == ReadKind::kUntilClose) {
    rest.assign(buffered());
    read_buffer_.begin = read_buffer_.end = 0;
  }
  std::vector<WriteWaiter> waiters;
  if (write_) {
    for (std::size_t i = write_->waiter_head; i < write_->waiters.size(); ++i) {
      waiters.push_back(std::move(write_->waiters[i]));
    }
    write_.reset();
  }
  std::vector<std::pair<Future<void>, std::exception_ptr>> extra;
  collect_pending(extra);
  // Unread input stays: reads after the close are still served from it
  // (output of a process that exited before anyone read it).
  release_buffer_if_empty();
  schedule_close_callback();
  std::exception_ptr cause = error_;

  // Like Tornado, the failure is marked retrieved: a fire-and-forget write
  // on a connection that went away is not worth an error log.
  auto fail = [&](detail::FutureStateBase& state) {
    state.set_exception(std::make_exception_ptr(StreamClosedError(cause)));
    (void)state.exception();
  };
  if (read) {
    if (kind == ReadKind::kUntilClose && (!cause || !rest.empty())) {
      typed<std::string>(read)->set_result(std::move(rest));
    } else {
      fail(*read);
    }
  }
  for (auto& w : waiters) {
    if (!w.future.done()) fail(*w.future.state());
  }
  for (auto& [future, why] : extra) {
    if (future.done()) continue;
    if (why) {
      future.set_exception(why);
      (void)future.exception();
    } else {
      fail(*future.state());
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

  if (writing()) {
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
  if (writing()) {
    flush();
    if (guard.destroyed || closed_) return;
  }
  if (reading()) service_read();
}

// --- reading --------------------------------------------------------------------------

void BaseIOStream::begin_read(ReadKind kind) {
  loop_->assert_in_loop_thread();
  if (reading()) throw InvalidStateError("Already reading: only one read may be pending on a stream");
  read_kind_ = kind;
}

template <class T>
Future<T> BaseIOStream::start_read(ReadKind kind) {
  begin_read(kind);
  Future<T> f;
  read_.future = detail::StateRef<detail::FutureStateBase>::share(f.state());
  arm_cancel();
  return f;
}

Future<std::string> BaseIOStream::read_bytes(std::size_t n, bool partial) {
  if (closed_ && read_buffer_.size() == 0) return closed_future<std::string>(error_);
  if (n == 0) {
    begin_read(ReadKind::kBytes);  // the "already reading" check
    read_kind_ = ReadKind::kNone;
    return make_ready_future(std::string());
  }
  Future<std::string> f = start_read<std::string>(ReadKind::kBytes);
  read_.target = n;
  read_partial_ = partial;
  service_read();
  return f;
}

Future<std::string> BaseIOStream::read_until(std::string delimiter, std::optional<std::size_t> max_bytes) {
  if (closed_ && read_buffer_.size() == 0) return closed_future<std::string>(error_);
  if (delimiter.empty()) throw std::invalid_argument("read_until: empty delimiter");
  Future<std::string> f = start_read<std::string>(ReadKind::kUntil);
  read_.text = std::move(delimiter);
  read_.target = max_bytes.value_or(SIZE_MAX);
  read_.done = 0;
  service_read();
  return f;
}

Future<std::string> BaseIOStream::read_until_regex(const std::string& pattern, std::optional<std::size_t> max_bytes) {
  if (closed_ && read_buffer_.size() == 0) return closed_future<std::string>(error_);
  if (reading()) begin_read(ReadKind::kRegex);  // throws: before compiling anything
  auto re = std::make_unique<Regex>(Regex{std::regex(pattern)});  // throws std::regex_error on a bad pattern
  Future<std::string> f = start_read<std::string>(ReadKind::kRegex);
  read_.ptr = re.release();
  read_.target = max_bytes.value_or(SIZE_MAX);
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
  Future<std::string> f = start_read<std::string>(ReadKind::kUntilClose);
  service_read();
  return f;
}

Future<std::size_t> BaseIOStream::read_into(std::span<char> buffer, bool partial) {
  if (closed_ && read_buffer_.size() == 0) return closed_future<std::size_t>(error_);
  Future<std::size_t> f = start_read<std::size_t>(ReadKind::kInto);
  read_.ptr = buffer.data();
  read_.done = 0;
  read_.target = buffer.size();
  read_partial_ = partial;
  service_read();
  return f;
}

Future<void> BaseIOStream::read_more(std::size_t space) {
  if (closed_) return closed_future<void>(error_);
  Future<void> f = start_read<void>(ReadKind::kMore);
  read_.target = read_buffer_.size();  // resolves once more than this is buffered
  read_.done = std::min(space, options_.max_buffer_size);
  service_read();
  return f;
}

void BaseIOStream::arm_cancel() noexcept {
  // A cancelled read gives up its slot; buffered bytes stay for the next read.
  read_.future->set_cancel_handler([this] { on_read_cancelled(); });
}

void BaseIOStream::on_read_cancelled() noexcept {
  return_direct_bytes();
  detail::StateRef<detail::FutureStateBase> f = take_read();  // the future is completing: just drop it
  release_buffer_if_empty();
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

void BaseIOStream::return_direct_bytes() noexcept {
  if (read_kind_ != ReadKind::kBytes || read_.text.empty()) return;
  // A direct read starts only with an empty buffer, and nothing else reads
  // into the buffer while it runs.
  std::size_t n = read_.done;
  if (n > 0) {
    try {
      ensure_space(n);
      std::memcpy(read_buffer_.storage.get() + read_buffer_.end, read_.text.data(), n);
      read_buffer_.end += n;
    } catch (const std::bad_alloc&) {
      // Out of memory while giving bytes back: they are lost with the read.
    }
  }
  read_.text = std::string();
  read_.done = 0;
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
  auto bigger = take_buffer(cap);
  std::memcpy(bigger.get(), b.storage.get() + b.begin, b.size());
  give_buffer(std::move(b.storage), b.capacity);
  b.end = b.size();
  b.begin = 0;
  b.storage = std::move(bigger);
  b.capacity = cap;
}

IOResult BaseIOStream::read_some(char* buf, std::size_t n) {
  IOResult r = read_from_fd(buf, n);
  switch (r.kind) {
    case IOResult::kBytes:
      // The short-read rule (top of iostream.hpp): the socket is drained
      // and its next arrival raises a new edge. After EPOLLRDHUP no edge
      // will come, so read on until end of file.
      if (r.bytes < n && short_read_drains_ && !peer_closed_) readable_ = false;
      break;
    case IOResult::kEof:
      eof_ = true;
      break;
    case IOResult::kWouldBlock:
      readable_ = false;
      break;
    case IOResult::kError:
      close_with(r, "read");
      break;
  }
  return r;
}

bool BaseIOStream::fill_buffer() {
  if (closed_ || (!readable_ && !has_pending_input())) return false;
  // Large reads (read_bytes of a big body) ask for their size at once.
  std::size_t want = kMinReadSpace;
  if (read_kind_ == ReadKind::kBytes && read_.target > read_buffer_.size()) {
    want = std::min(read_.target - read_buffer_.size(), options_.read_chunk_size);
  } else if (read_kind_ == ReadKind::kMore && read_.done > want) {
    want = read_.done;
  } else if (read_buffer_.capacity >= kBufferSize && read_buffer_.capacity - read_buffer_.size() < kMinReadSpace) {
    want = std::min(read_buffer_.capacity, options_.read_chunk_size);
  }
  ensure_space(std::max(want, kMinReadSpace));
  ReadBuffer& b = read_buffer_;
  IOResult r = read_some(b.storage.get() + b.end, b.capacity - b.end);
  if (r.kind == IOResult::kBytes) {
    b.end += r.bytes;
    return true;
  }
  // Nothing came: an idle connection waiting for its next request must not
  // sit on a buffer (the pool keeps it warm for the next reader).
  if (r.kind == IOResult::kWouldBlock) release_buffer_if_empty();
  return false;
}

std::size_t BaseIOStream::satisfied_by_buffer() {
  std::string_view data = buffered();
  switch (read_kind_) {
    case ReadKind::kBytes:
      if (read_partial_) return std::min(data.size(), read_.target);
      return data.size() >= read_.target ? read_.target : 0;
    case ReadKind::kUntil: {
      const std::string& d = read_.text;
      std::size_t max_bytes = read_.target;
      // Resume where the last search stopped: linear in the input overall.
      std::size_t from = read_.done >= d.size() ? read_.done - (d.size() - 1) : 0;
      std::size_t pos = data.find(d, from);
      if (pos != std::string_view::npos) {
        std::size_t n = pos + d.size();
        if (n > max_bytes) throw UnsatisfiableReadError("delimiter not found within max_bytes");
        return n;
      }
      read_.done = data.size();
      if (data.size() > max_bytes) throw UnsatisfiableReadError("delimiter not found within max_bytes");
      return 0;
    }
    case ReadKind::kRegex: {
      std::cmatch m;
      std::size_t max_bytes = read_.target;
      if (std::regex_search(data.data(), data.data() + data.size(), m, static_cast<Regex*>(read_.ptr)->re)) {
        std::size_t n = static_cast<std::size_t>(m.position(0) + m.length(0));
        if (n > max_bytes) throw UnsatisfiableReadError("pattern not found within max_bytes");
        return n;
      }
      if (data.size() > max_bytes) throw UnsatisfiableReadError("pattern not found within max_bytes");
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

bool BaseIOStream::wants_direct_read() const noexcept {
  if (read_kind_ != ReadKind::kBytes) return false;
  if (!read_.text.empty()) return true;  // one is under way
  // Large, exact, not satisfied by the buffer, with more input to come, and
  // within the buffer limit (a bigger read must fail the way Tornado's
  // does, by reaching max_buffer_size).
  return !read_partial_ && read_.target >= kDirectReadMin && read_.target <= options_.max_buffer_size &&
         read_buffer_.size() < read_.target && !closed_ && !eof_;
}

void BaseIOStream::service_direct_read() {
  // The string the read will return is the destination: sized once (this
  // zero-fills it, which costs far less than the buffer doublings and the
  // copy out it replaces), filled from the buffer, then from the fd.
  if (read_.text.empty()) {
    read_.text.resize(read_.target);
    std::size_t take = read_buffer_.size();
    if (take > 0) std::memcpy(read_.text.data(), buffered().data(), take);
    read_.done = take;
    read_buffer_.begin = read_buffer_.end = 0;
    release_buffer_if_empty();
  }
  while (read_.done < read_.target) {
    if (closed_ || eof_) {
      return_direct_bytes();  // to the buffer: later reads still see them
      if (!closed_) {
        close();  // fails this read
      } else {
        fail_read();
      }
      return;
    }
    if (!readable_ && !has_pending_input()) return;  // wait for the next edge
    IOResult r = read_some(read_.text.data() + read_.done, read_.target - read_.done);
    if (r.kind == IOResult::kBytes) {
      read_.done += r.bytes;
    } else if (r.kind == IOResult::kError) {
      return;  // read_some closed the stream, which failed the read
    }
  }
  std::string value = std::move(read_.text);
  detail::StateRef<detail::FutureStateBase> f = take_read();
  typed<std::string>(f)->set_result(std::move(value));  // last: may destroy the stream
}

void BaseIOStream::service_read_into() {
  for (;;) {
    // Buffered bytes first, then straight into the caller's memory.
    char* into = static_cast<char*>(read_.ptr);
    std::size_t want = read_.target - read_.done;
    std::size_t take = std::min(want, read_buffer_.size());
    if (take > 0) {
      std::memcpy(into + read_.done, buffered().data(), take);
      read_.done += take;
      read_buffer_.begin += take;
      if (read_buffer_.begin == read_buffer_.end) read_buffer_.begin = read_buffer_.end = 0;
    }
    bool done = read_.done == read_.target || (read_partial_ && read_.done > 0);
    if (!done && closed_) {
      fail_read();
      return;
    }
    if (!done && !eof_ && !closed_ && read_buffer_.size() == 0 && (readable_ || has_pending_input())) {
      IOResult r = read_some(into + read_.done, read_.target - read_.done);
      if (r.kind == IOResult::kBytes) {
        read_.done += r.bytes;
        continue;
      }
      if (r.kind == IOResult::kError) return;  // closed: the read failed
    }
    if (done) {
      std::size_t n = read_.done;
      detail::StateRef<detail::FutureStateBase> f = take_read();
      release_buffer_if_empty();
      typed<std::size_t>(f)->set_result(n);  // last: may destroy the stream
      return;
    }
    if (eof_) close();
    return;  // or wait for the next edge
  }
}

void BaseIOStream::service_read() {
  if (!closed_ && !io_ready()) return;  // resume_io() comes back here
  DestroyGuard guard(this);
  if (read_kind_ == ReadKind::kInto) {
    service_read_into();
    return;
  }
  for (;;) {
    if (wants_direct_read()) {
      service_direct_read();
      return;
    }
    std::size_t n;
    try {
      n = satisfied_by_buffer();
    } catch (const UnsatisfiableReadError&) {
      close(std::current_exception());
      return;
    }
    if (n > 0) {
      if (read_kind_ == ReadKind::kMore) {
        detail::StateRef<detail::FutureStateBase> f = take_read();
        static_cast<detail::FutureState<void>*>(f.get())->set_result();
        return;
      }
      std::string value(buffered().substr(0, n));
      read_buffer_.begin += n;
      if (read_buffer_.begin == read_buffer_.end) read_buffer_.begin = read_buffer_.end = 0;
      detail::StateRef<detail::FutureStateBase> f = take_read();
      release_buffer_if_empty();
      typed<std::string>(f)->set_result(std::move(value));  // last: may destroy the stream
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
  detail::StateRef<detail::FutureStateBase> f = take_read();
  release_buffer_if_empty();
  if (f) f->set_exception(std::make_exception_ptr(StreamClosedError(error_)));
}

// --- writing ----------------------------------------------------------------------------

Future<void> BaseIOStream::write(std::string data) {
  Chunk c;
  c.owned = std::move(data);
  return queue_write(std::move(c));
}

Future<void> BaseIOStream::write(std::string_view data) {
  return queue_write(Chunk{}, data);
}

Future<void> BaseIOStream::write(std::shared_ptr<const std::string> data) {
  Chunk c;
  c.shared = std::move(data);
  return queue_write(std::move(c));
}

Future<void> BaseIOStream::queue_write(Chunk chunk, std::string_view borrowed) {
  loop_->assert_in_loop_thread();
  if (closed_) return closed_future<void>(error_);
  std::string_view view = borrowed.empty() ? chunk.view() : borrowed;
  std::size_t size = view.size();
  if (size == 0) return ready_void();
  std::size_t queued = write_ ? write_->queued : 0;
  if (options_.max_write_buffer_size && queued + size > options_.max_write_buffer_size) {
    close(std::make_exception_ptr(StreamBufferFullError("Reached maximum write buffer size")));
    return closed_future<void>(error_);
  }
  std::size_t sent = 0;
  if (!write_ && writable_ && io_ready()) {
    // Nothing queued: hand the data to the kernel now. Whatever it takes
    // needs no queue at all (the common case for a response or an echo).
    iovec iov{const_cast<char*>(view.data()), size};
    IOResult r = write_to_fd(&iov, 1);
    if (r.kind == IOResult::kBytes) {
      if (r.bytes == size) return ready_void();
      sent = r.bytes;
    } else if (r.kind == IOResult::kWouldBlock) {
      writable_ = false;
    } else {
      close_with(r, "write");
      return closed_future<void>(error_);
    }
  }
  if (!borrowed.empty()) {
    // The caller's bytes are only lent for this call: keep what is left.
    chunk.owned.assign(borrowed.substr(sent));
  }
  if (!write_) {
    Caches& c = tls_caches;
    write_.reset(c.queue_count > 0 ? static_cast<WriteQueue*>(c.queues[--c.queue_count]) : new WriteQueue());
  }
  WriteQueue& q = *write_;
  bool idle_before = q.waiter_head == q.waiters.size();
  q.chunks.push_back(std::move(chunk));
  if (q.chunks.size() - 1 == q.head) q.offset = borrowed.empty() ? sent : 0;
  q.queued += size - sent;
  q.written += sent;
  q.enqueued += size;
  if (idle_before && !in_flush_ && writable_ && io_ready()) {
    flush();
    if (closed_) return closed_future<void>(error_);
    if (!write_) return ready_void();  // all of it went out
  }
  Future<void> f;
  write_->waiters.push_back(WriteWaiter{write_->enqueued, f});
  if (!in_flush_ && writable_ && io_ready()) flush();
  return f;
}

void BaseIOStream::flush() {
  if (in_flush_ || closed_ || !io_ready() || !write_) return;
  DestroyGuard guard(this);
  in_flush_ = true;
  for (;;) {
    WriteQueue& q = *write_;
    while (q.queued > 0 && writable_) {
      iovec iov[kMaxIov];
      int count = 0;
      for (std::size_t i = q.head; i < q.chunks.size() && count < kMaxIov; ++i) {
        std::string_view v = q.chunks[i].view();
        if (i == q.head) v.remove_prefix(q.offset);
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
      q.queued -= r.bytes;
      q.written += r.bytes;
      std::size_t left = r.bytes;
      while (left > 0) {
        std::size_t chunk_left = q.chunks[q.head].view().size() - q.offset;
        if (left >= chunk_left) {
          left -= chunk_left;
          q.chunks[q.head] = Chunk{};  // release the memory now
          ++q.head;
          q.offset = 0;
        } else {
          q.offset += left;
          left = 0;
        }
      }
    }
    if (q.queued == 0) {
      q.chunks.clear();
      q.head = q.offset = 0;
    }
    bool resolved = false;
    while (write_ && write_->waiter_head < write_->waiters.size() &&
           write_->waiters[write_->waiter_head].until <= write_->written) {
      Future<void> f = std::move(write_->waiters[write_->waiter_head].future);
      ++write_->waiter_head;
      f.set_result();  // may resume a writer, which may write more or destroy us
      if (guard.destroyed) return;
      resolved = true;
    }
    if (closed_ || !write_) break;
    if (write_->waiter_head == write_->waiters.size()) {
      write_->waiters.clear();
      write_->waiter_head = 0;
      if (write_->queued == 0) {
        // Empty: an idle connection keeps no write queue.
        write_.reset();
        break;
      }
    }
    if (!resolved || write_->queued == 0 || !writable_) break;
  }
  in_flush_ = false;
}

// --- IOStream ------------------------------------------------------------------------------

IOStream::IOStream(UniqueFd socket, StreamOptions options) : BaseIOStream(std::move(socket), options) {
  set_short_read_drains(true);
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
