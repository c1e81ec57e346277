#include "squall/net/tcpserver.hpp"

#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <exception>
#include <stdexcept>
#include <utility>

#include "squall/core/errors.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/log.hpp"
#include "squall/net/process.hpp"

namespace squall::net {

namespace {

void log_connection_error(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::app().error("Error in connection callback: {}", ex.what());
  } catch (...) {
    log::app().error("Error in connection callback: unknown exception");
  }
}

int port_of(const UniqueFd& fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
  return 0;
}

}  // namespace

TCPServer::TCPServer(TCPServerOptions options) : options_(std::move(options)) {}

TCPServer::TCPServer(StreamHandler handler, TCPServerOptions options)
    : options_(std::move(options)), handler_(std::move(handler)) {}

TCPServer::~TCPServer() { stop(); }

int TCPServer::listen(int port, const std::string& address, const BindOptions& options) {
  std::vector<UniqueFd> sockets = bind_sockets(port, address, options);
  int bound = port_of(sockets.front());
  add_sockets(std::move(sockets));
  return bound;
}

int TCPServer::bind(int port, const std::string& address, const BindOptions& options) {
  std::vector<UniqueFd> sockets = bind_sockets(port, address, options);
  int bound = port_of(sockets.front());
  for (auto& s : sockets) pending_sockets_.push_back(std::move(s));
  return bound;
}

void TCPServer::start(int num_processes, int max_restarts) {
  if (started_) throw InvalidStateError("TCPServer::start called twice");
  started_ = true;
  // Tornado's order: fork first, so each child makes its own IOLoop and
  // registers the inherited listening sockets with it.
  if (num_processes != 1) fork_processes(num_processes, max_restarts);
  add_sockets(std::exchange(pending_sockets_, {}));
}

void TCPServer::add_sockets(std::vector<UniqueFd> sockets) {
  for (auto& s : sockets) add_socket(std::move(s));
}

void TCPServer::add_socket(UniqueFd socket) {
  stopped_ = false;
  handlers_.reserve(handlers_.size() + 1);
  sockets_.reserve(sockets_.size() + 1);
  AcceptHandler handler = add_accept_handler(
      socket.get(),
      [this](UniqueFd connection, std::string address) { handle_connection(std::move(connection), std::move(address)); },
      options_.accept);
  // Both reserved above: nothing below can throw and leave the handler
  // registered for a socket the server does not hold.
  handlers_.push_back(std::move(handler));
  sockets_.push_back(std::move(socket));
}

void TCPServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  // Deregister before closing: the loop must never watch a closed fd
  // (its number may be reused at once).
  handlers_.clear();
  sockets_.clear();
  pending_sockets_.clear();
}

std::vector<int> TCPServer::ports() const {
  std::vector<int> out;
  for (const auto& s : sockets_) out.push_back(port_of(s));
  for (const auto& s : pending_sockets_) out.push_back(port_of(s));
  return out;
}

Future<void> TCPServer::handle_stream(std::unique_ptr<IOStream> stream, std::string address) {
  if (!handler_) throw std::logic_error("TCPServer: override handle_stream or pass a handler to the constructor");
  return handler_(std::move(stream), std::move(address));
}

void TCPServer::handle_connection(UniqueFd connection, std::string address) {
  Future<void> served(nullptr);
  try {
    std::unique_ptr<IOStream> stream = options_.make_stream ? options_.make_stream(std::move(connection), options_.stream)
                                                            : std::make_unique<IOStream>(std::move(connection), options_.stream);
    served = handle_stream(std::move(stream), std::move(address));
  } catch (...) {
    log_connection_error(std::current_exception());
    return;
  }
  // Nobody else waits for the coroutine: report its failure here. The
  // callback captures nothing of the server, which may be gone by then.
  if (!served.valid()) return;
  served.add_done_callback([](Future<void> done) {
    // A cancelled handler was stopped on purpose: not an error.
    if (done.cancelled()) {
      (void)done.exception();
      return;
    }
    if (std::exception_ptr e = done.exception()) log_connection_error(e);
  });
}

}  // namespace squall::net
