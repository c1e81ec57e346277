// TCPServer: accepts TCP (or unix socket) connections and hands each one, as
// an IOStream, to a handle_stream coroutine (Tornado's tcpserver). Loop-
// affine: after bind()/start() or listen(), use and destroy the server on the
// thread of the IOLoop that was current when its sockets were added.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "squall/core/callback.hpp"
#include "squall/core/future.hpp"
#include "squall/core/unique_fd.hpp"
#include "squall/net/iostream.hpp"
#include "squall/net/netutil.hpp"

namespace squall::net {

struct TCPServerOptions {
  /// Buffer limits of every accepted stream (Tornado's max_buffer_size and
  /// read_chunk_size).
  StreamOptions stream = {};
  /// Null: a plain IOStream per connection. TLS plugs in here (netutil.hpp).
  StreamFactory make_stream = nullptr;
  /// Accept batching and out-of-descriptor behaviour (netutil.hpp).
  AcceptOptions accept = {};
};

/// A non-blocking, single-threaded TCP server (Tornado's TCPServer).
///
/// Subclass it and override handle_stream, or pass the handler to the
/// constructor:
///
///   class EchoServer : public TCPServer {
///     Future<void> handle_stream(std::unique_ptr<IOStream> stream, std::string address) override;
///   };
///   EchoServer server;
///   int port = server.listen(8888);
///   IOLoop::current().start();
///
/// Three ways to start, as in Tornado:
/// - listen(port): one process, sockets bound and served at once;
/// - bind(port) then start(n): `n` processes forked by fork_processes,
///   sharing the listening sockets (start is called before any IOLoop exists);
/// - bind_sockets() (or bind_unix_socket()) yourself, fork_processes() if you
///   like, then add_sockets().
///
/// The server keeps nothing per connection: each connection costs its
/// IOStream and its handle_stream coroutine frame, both owned by that
/// coroutine. stop() stops accepting; connections already made go on.
class TCPServer {
 public:
  /// The handler form of handle_stream; see handle_stream for the contract.
  /// It is stored in the server, so a lambda's captures live as long as the
  /// server does.
  using StreamHandler = UniqueFunction<Future<void>(std::unique_ptr<IOStream> stream, std::string address)>;

  /// A server whose subclass overrides handle_stream.
  explicit TCPServer(TCPServerOptions options = {});
  /// A server that calls `handler` for each connection.
  explicit TCPServer(StreamHandler handler, TCPServerOptions options = {});
  TCPServer(const TCPServer&) = delete;
  TCPServer& operator=(const TCPServer&) = delete;
  /// stop(). Must run on the server's loop thread.
  virtual ~TCPServer();

  /// bind_sockets(port, address, options) + add_sockets() on the current
  /// loop (Tornado's listen). Returns the port bound: the OS's choice when
  /// `port` is 0.
  int listen(int port, const std::string& address = "", const BindOptions& options = {});

  /// Binds sockets to be served once start() is called; may be called more
  /// than once. Needs no IOLoop (and must not create one before start(n)).
  /// Returns the port bound.
  int bind(int port, const std::string& address = "", const BindOptions& options = {});

  /// Starts serving the sockets given to bind(). With num_processes other
  /// than 1, forks first (fork_processes(num_processes, max_restarts): <= 0
  /// means one per CPU) and returns in each child, which then serves the
  /// shared sockets; the parent stays in fork_processes supervising. Call
  /// it before any IOLoop or thread exists when forking (process.hpp).
  /// InvalidStateError if called twice.
  void start(int num_processes = 1, int max_restarts = 100);

  /// Serves already-listening sockets on the current IOLoop; the server
  /// owns and closes them (Tornado's add_sockets).
  void add_sockets(std::vector<UniqueFd> sockets);
  void add_socket(UniqueFd socket);

  /// Stops accepting and closes the listening sockets (Tornado's stop).
  /// Connections already accepted are not touched. Idempotent.
  void stop();

  /// The ports of the listening sockets (bound or serving), in order.
  std::vector<int> ports() const;

  const TCPServerOptions& options() const noexcept { return options_; }

 protected:
  /// Serves one connection (Tornado's handle_stream). Called on the loop
  /// thread for each accepted connection, with the stream (owned by this
  /// call from now on) and the peer's address ("127.0.0.1:5555",
  /// "[::1]:80", or "" for a unix socket).
  ///
  /// Usually a coroutine; nothing waits for it, and an exception escaping
  /// it is logged ("Error in connection callback", squall.application)
  /// without affecting the server or other connections. A handler that
  /// uses the server's members must not outlive the server: keep the
  /// server alive until its connections are done.
  ///
  /// The default calls the handler given to the constructor, and without
  /// one throws std::logic_error.
  virtual Future<void> handle_stream(std::unique_ptr<IOStream> stream, std::string address);

 private:
  void handle_connection(UniqueFd connection, std::string address);

  TCPServerOptions options_;
  StreamHandler handler_;
  std::vector<UniqueFd> pending_sockets_;  // bound, waiting for start()
  std::vector<UniqueFd> sockets_;          // served
  std::vector<AcceptHandler> handlers_;    // one per socket in sockets_
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace squall::net
