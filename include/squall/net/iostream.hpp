// Non-blocking streams over file descriptors (Tornado's iostream):
// BaseIOStream holds the buffering and the read/write state machine;
// IOStream (sockets) and PipeIOStream (pipes) supply the syscalls, and
// SSLIOStream (ssl_iostream.hpp) adds TLS. A stream is loop-affine: create,
// use and destroy it on its loop's thread.
//
// Design choices (and why):
// - The fd is registered once, edge-triggered, for reading and writing
//   (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET). Nothing re-arms interest per
//   operation, so a request/response costs no epoll_ctl at all. The stream
//   remembers whether the fd was left readable/writable, and reads only when
//   a read is pending, so unread data waits in the kernel, not in our memory.
//   On a socket, a read that returns less than it asked for means the
//   socket is drained (the next arrival raises a new edge), so a request/
//   response costs one recv, not a second one that returns EAGAIN; after
//   EPOLLRDHUP the stream reads on until end of file instead.
// - One contiguous read buffer per stream, compacted in place, taken from a
//   per-thread pool when a read starts and given back as soon as it is empty:
//   an idle connection holds no read buffer (nginx's approach). A large
//   read_bytes(n) reads straight into the string it returns.
// - Writes go to the kernel at once when it takes them; what it does not take
//   waits in a write queue (owned strings or shared immutable buffers, never
//   copied) that exists only while it holds something, flushed with one
//   writev/sendmsg per wake-up.
// - Small: an idle stream with a pending read is about 200 bytes (the
//   pending read is one tagged record with one future; the write queue and
//   the read buffer are not there while empty). tests/net/iostream_test.cpp
//   pins the size.
// - Futures are resolved last in every code path: a coroutine resumed by a
//   read may destroy the stream, so nothing touches the stream after.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "squall/core/callback.hpp"
#include "squall/core/detail/inline_function.hpp"
#include "squall/core/errors.hpp"
#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/unique_fd.hpp"

namespace squall::net {

/// A read or write on a closed stream, or a stream closed while one was
/// pending. `real_error()` is the cause (ECONNRESET, a TLS alert, ...), if any.
class StreamClosedError : public Error {
 public:
  explicit StreamClosedError(std::exception_ptr real_error = nullptr);
  std::exception_ptr real_error() const noexcept { return real_error_; }

 private:
  std::exception_ptr real_error_;
};

/// A read that cannot be satisfied within its limit (max_bytes, the buffer
/// size). The stream is closed.
class UnsatisfiableReadError : public Error {
 public:
  using Error::Error;
};

/// A write that would grow the write buffer past max_write_buffer_size.
class StreamBufferFullError : public Error {
 public:
  using Error::Error;
};

/// An OS error on a stream's fd, with its errno as std::error_code.
class StreamIOError : public Error {
 public:
  StreamIOError(int err, const std::string& what);
  std::error_code code() const noexcept { return code_; }

 private:
  std::error_code code_;
};

struct StreamOptions {
  /// Largest amount of unconsumed input a stream will hold (Tornado: 100 MB).
  std::size_t max_buffer_size = std::size_t{100} * 1024 * 1024;
  /// Largest amount of unsent output; 0 means unlimited (Tornado's None).
  std::size_t max_write_buffer_size = 0;
  /// Bytes asked of the kernel per read once a buffer exists.
  std::size_t read_chunk_size = 64 * 1024;
};

/// Outcome of one syscall: bytes moved, end of file, would block, or an error.
struct IOResult {
  enum Kind : std::uint8_t { kBytes, kEof, kWouldBlock, kError };
  Kind kind = kWouldBlock;
  std::size_t bytes = 0;
  int error = 0;         // errno, for kError
  std::string message;   // for errors that carry text instead (TLS)

  static IOResult bytes_moved(std::size_t n) noexcept { return {kBytes, n, 0, {}}; }
  static IOResult eof() noexcept { return {kEof, 0, 0, {}}; }
  static IOResult would_block() noexcept { return {kWouldBlock, 0, 0, {}}; }
  static IOResult failed(int err, std::string message = {}) { return {kError, 0, err, std::move(message)}; }
};

class BaseIOStream {
 public:
  BaseIOStream(const BaseIOStream&) = delete;
  BaseIOStream& operator=(const BaseIOStream&) = delete;
  /// Closes the stream (pending operations fail with StreamClosedError).
  virtual ~BaseIOStream();

  // --- reads: only one may be pending; a second is an InvalidStateError ------
  /// Exactly `n` bytes; with `partial`, as soon as at least one byte is there
  /// (up to n).
  Future<std::string> read_bytes(std::size_t n, bool partial = false);
  /// Up to and including `delimiter`. More than `max_bytes` without finding
  /// it: UnsatisfiableReadError, and the stream closes.
  Future<std::string> read_until(std::string delimiter, std::optional<std::size_t> max_bytes = std::nullopt);
  /// Up to and including the first match of `pattern` (ECMAScript syntax).
  Future<std::string> read_until_regex(const std::string& pattern,
                                       std::optional<std::size_t> max_bytes = std::nullopt);
  /// Everything until the peer closes. Reads on a closed stream are still
  /// served from input that arrived before the close.
  Future<std::string> read_until_close();
  /// Fills `buffer` (which must outlive the read); with `partial`, resolves
  /// as soon as some bytes are in it. Resolves with the count.
  Future<std::size_t> read_into(std::span<char> buffer, bool partial = false);

  // --- zero-copy access for protocol parsers ---------------------------------
  /// The unconsumed input. Valid until the next read call, consume() or
  /// read_more() on this stream.
  std::string_view buffered() const noexcept {
    return {read_buffer_.data() + read_buffer_.begin, read_buffer_.end - read_buffer_.begin};
  }
  /// Drops the first `n` buffered bytes.
  void consume(std::size_t n) noexcept;
  /// Resolves once at least one more byte is buffered (reading from the fd
  /// if it is readable). StreamClosedError at end of input. `space` asks for
  /// room for that many bytes first, so one recv can bring a bulk transfer's
  /// whole chunk (an echo or a proxy: read_more(65536), write(buffered()),
  /// consume(); nothing is copied, and an idle stream still holds no buffer).
  Future<void> read_more(std::size_t space = 0);

  // --- writes --------------------------------------------------------------------
  /// Queues `data`; the Future resolves once it has left user space (handed
  /// to the kernel), in order. Writes are flushed with writev.
  Future<void> write(std::string data);
  /// Borrows `data` for the call only: what the kernel takes at once is not
  /// copied (with nothing queued, usually all of it); the rest is copied
  /// into the queue. With read_more(space) and buffered(), or read_into, an
  /// echo or a proxy copies no byte the kernel takes at once.
  Future<void> write(std::string_view data);
  Future<void> write(const char* data) { return write(std::string_view(data)); }
  /// Shares `data` without copying it (a large body, a cached file).
  Future<void> write(std::shared_ptr<const std::string> data);

  // --- state -------------------------------------------------------------------------
  /// Runs once, on the loop, after the stream closed (for any reason).
  /// A callable capturing up to 16 bytes (`this`, a weak_ptr) is stored in
  /// the stream without allocating.
  template <class F>
    requires std::is_invocable_v<std::decay_t<F>&>
  void set_close_callback(F&& callback) {
    close_callback_ = CloseCallback(std::forward<F>(callback));
  }
  void set_close_callback(std::nullptr_t) noexcept { close_callback_ = nullptr; }
  /// Closes the fd; pending operations fail with StreamClosedError carrying
  /// `error` (or the error that caused the close).
  void close(std::exception_ptr error = nullptr);
  bool closed() const noexcept { return closed_; }
  /// Why the stream closed, if it closed because of an error.
  std::exception_ptr error() const noexcept { return error_; }
  bool reading() const noexcept { return read_kind_ != ReadKind::kNone; }
  /// True while written data waits in user space for the kernel to take it.
  bool writing() const noexcept { return write_ != nullptr && write_->queued > 0; }
  int fileno() const noexcept { return fd_.get(); }
  IOLoop& io_loop() const noexcept { return *loop_; }
  const StreamOptions& options() const noexcept { return options_; }
  /// Gives up the fd without closing it (for start_tls): requires no
  /// pending read or write and no buffered input; the stream is closed
  /// afterwards. InvalidStateError otherwise.
  UniqueFd detach();
  /// Bytes of read buffer currently held (0 when idle).
  std::size_t read_buffer_capacity() const noexcept { return read_buffer_.capacity; }

 protected:
  BaseIOStream(UniqueFd fd, StreamOptions options);

  /// Reads into `buf`. Never throws on EAGAIN.
  virtual IOResult read_from_fd(char* buf, std::size_t n) = 0;
  /// Writes the given buffers (all of them or a prefix).
  virtual IOResult write_to_fd(const iovec* iov, int count) = 0;
  /// Called by close() before the fd is closed (TLS sends close_notify).
  /// Must not resolve futures: see collect_pending.
  virtual void before_close() noexcept {}
  /// Futures of the subclass that close() must fail, each with its error
  /// (null: StreamClosedError). close() resolves them last, like its own.
  virtual void collect_pending(std::vector<std::pair<Future<void>, std::exception_ptr>>& /*out*/) {}
  /// For subclasses that must finish something (a TLS handshake) before
  /// user reads and writes run: while this returns false, reads and writes
  /// wait; call resume_io() once it would return true.
  virtual bool io_ready() const noexcept { return true; }
  void resume_io();
  /// Subclasses with their own buffering (TLS) report pending input here.
  virtual bool has_pending_input() const noexcept { return false; }
  /// Registers the fd with the loop (edge-triggered, read and write).
  void register_fd();
  /// Called for readiness while io_ready() is false.
  virtual void on_handshake_event(std::uint32_t /*events*/) {}
  /// Closes the stream for an I/O error, keeping the cause.
  void close_with(const IOResult& r, const char* op);
  bool fd_readable() const noexcept { return readable_; }
  bool fd_writable() const noexcept { return writable_; }
  void set_fd_readable(bool v) noexcept { readable_ = v; }
  void set_fd_writable(bool v) noexcept { writable_ = v; }
  /// Whether read_from_fd returning fewer bytes than asked means the fd is
  /// drained until its next edge: true for sockets (IOStream); false for
  /// TLS, whose reads stop at record boundaries, and for pipes.
  void set_short_read_drains(bool v) noexcept { short_read_drains_ = v; }

  UniqueFd fd_;

 private:
  friend struct DestroyGuard;
  enum class ReadKind : std::uint8_t { kNone, kBytes, kUntil, kRegex, kUntilClose, kInto, kMore };

  /// The one contiguous input buffer: data in [begin, end) of `capacity`.
  struct ReadBuffer {
    std::unique_ptr<char[]> storage;
    std::size_t capacity = 0;
    std::size_t begin = 0;
    std::size_t end = 0;
    const char* data() const noexcept { return storage.get(); }
    std::size_t size() const noexcept { return end - begin; }
  };

  struct Regex;  // std::regex, kept out of this header
  /// The parameters of the one pending read; which fields mean what depends
  /// on read_kind_ (a tagged record: one future, one string, three words).
  struct PendingRead {
    /// The read's state: FutureState<std::string> (kBytes, kUntil, kRegex,
    /// kUntilClose), <std::size_t> (kInto) or <void> (kMore).
    detail::StateRef<detail::FutureStateBase> future;
    /// kBytes, kInto: bytes wanted. kMore: buffered size when it started.
    /// kUntil, kRegex: max_bytes.
    std::size_t target = 0;
    /// kUntil: bytes already searched. kInto, direct kBytes: bytes filled.
    /// kMore: the free space it asked for.
    std::size_t done = 0;
    /// kInto: the caller's memory. kRegex: the compiled pattern (owned).
    void* ptr = nullptr;
    /// kUntil: the delimiter. kBytes: the result, filled straight from the
    /// fd when the read is large (see service_direct_read).
    std::string text;
  };
  struct Chunk {
    std::string owned;
    std::shared_ptr<const std::string> shared;
    std::string_view view() const noexcept {
      return shared ? std::string_view(*shared) : std::string_view(owned);
    }
  };
  struct WriteWaiter {
    std::uint64_t until;  // resolved once this many bytes were written in all
    Future<void> future;
  };
  /// Output the kernel has not taken yet, and the writers waiting for it.
  /// Exists only while non-empty (taken from a small per-thread cache).
  struct WriteQueue {
    std::vector<Chunk> chunks;
    std::size_t head = 0;          // first unsent chunk
    std::size_t offset = 0;        // bytes of it already sent
    std::size_t queued = 0;        // unsent bytes
    std::uint64_t written = 0;     // sent since the queue was made
    std::uint64_t enqueued = 0;    // queued since the queue was made
    std::vector<WriteWaiter> waiters;
    std::size_t waiter_head = 0;
  };
  struct WriteQueueDeleter {
    void operator()(WriteQueue* q) const noexcept;
  };
  using CloseCallback = detail::InlineFunction<void(), 16>;

  void handle_events(int fd, std::uint32_t events);
  void begin_read(ReadKind kind);
  template <class T>
  Future<T> start_read(ReadKind kind);
  /// Reads from the fd and/or the buffer until the pending read is
  /// satisfied, the fd would block, or the stream closes. Resolves last.
  void service_read();
  /// service_read for kInto, and for a large kBytes (wants_direct_read):
  /// straight into the destination, the caller's memory or the string the
  /// read returns.
  void service_read_into();
  void service_direct_read();
  bool wants_direct_read() const noexcept;
  /// How many buffered bytes satisfy the pending read; 0 if not yet.
  /// Throws UnsatisfiableReadError past a limit.
  std::size_t satisfied_by_buffer();
  bool fill_buffer();  // one read from the fd; false when it would block
  /// One read from the fd into `buf`; updates readable_/eof_ (the short-read
  /// rule at the top). Closes the stream on an error.
  IOResult read_some(char* buf, std::size_t n);
  void ensure_space(std::size_t want);
  void release_buffer_if_empty() noexcept;
  /// Puts the bytes a direct read already took back in front of the buffer,
  /// so a cancelled or failed read loses nothing.
  void return_direct_bytes() noexcept;
  void arm_cancel() noexcept;
  void on_read_cancelled() noexcept;
  /// Ends the pending read: its state, with the record cleared.
  detail::StateRef<detail::FutureStateBase> take_read() noexcept;
  /// Fails the pending read with StreamClosedError (resolves last).
  void fail_read();
  /// Queues `chunk`, or, when `borrowed` is not empty, the bytes of
  /// `borrowed` the kernel does not take at once (copied into the chunk).
  Future<void> queue_write(Chunk chunk, std::string_view borrowed = {});
  void flush();
  void schedule_close_callback();

  // Packed beside fd_ (4 bytes): the read kind and the flags.
  ReadKind read_kind_ = ReadKind::kNone;
  bool read_partial_ : 1 = false;
  bool registered_ : 1 = false;
  bool readable_ : 1 = false;
  bool writable_ : 1 = false;
  bool eof_ : 1 = false;
  bool peer_closed_ : 1 = false;
  bool closed_ : 1 = false;
  bool in_flush_ : 1 = false;
  bool short_read_drains_ : 1 = false;
  IOLoop* loop_;
  StreamOptions options_;
  ReadBuffer read_buffer_;
  PendingRead read_;
  std::unique_ptr<WriteQueue, WriteQueueDeleter> write_;
  CloseCallback close_callback_;
  std::exception_ptr error_;
  bool* destroyed_flag_ = nullptr;  // see DestroyGuard in iostream.cpp
};

/// A stream over a connected, non-blocking socket.
///
///   auto stream = std::make_unique<IOStream>(std::move(connected_fd));
///   co_await stream->write("GET / HTTP/1.0\r\n\r\n");
///   std::string head = co_await stream->read_until("\r\n\r\n");
class IOStream : public BaseIOStream {
 public:
  explicit IOStream(UniqueFd socket, StreamOptions options = {});
  ~IOStream() override;
  /// TCP_NODELAY: send small writes at once (Nagle off).
  void set_nodelay(bool on);
  /// The peer's address as text ("127.0.0.1:5555", "[::1]:80", unix path).
  std::string peer_name() const;

 protected:
  IOResult read_from_fd(char* buf, std::size_t n) override;
  IOResult write_to_fd(const iovec* iov, int count) override;
};

/// A stream over a pipe fd (one direction), e.g. a Subprocess's stdio.
/// Writing to a pipe whose reader is gone fails with EPIPE; SIGPIPE is
/// kept from the process.
class PipeIOStream : public BaseIOStream {
 public:
  explicit PipeIOStream(UniqueFd pipe, StreamOptions options = {});

 protected:
  IOResult read_from_fd(char* buf, std::size_t n) override;
  IOResult write_to_fd(const iovec* iov, int count) override;
};

}  // namespace squall::net
