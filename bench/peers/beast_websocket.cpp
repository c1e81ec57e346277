// Boost.Beast side of the WebSocket benchmark (bench/websocket): the same
// two endpoints as squall's server, written the way Beast's examples write
// them (advanced_server / websocket chat). One io_context(1) run by the
// server process's only thread.
//
// - /echo: every message back with its type (flat_buffer, async_read +
//   async_write in a C++20 coroutine per connection).
// - /chat: every message to every member. Each session keeps a queue of
//   shared messages and one async_write in flight (Beast allows one), as
//   the websocket-chat-multi example does.
// - The HTTP request is read first (http::async_read) so the path can be
//   routed, then ws.async_accept(request). TCP_NODELAY on every socket;
//   no permessage-deflate (Beast's default, and squall's in the benchmark).
// - Exits (_exit, no teardown) when `control_fd` becomes readable.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <utility>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::ip::tcp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

class ChatSession;
std::set<ChatSession*> g_members;

/// A chat member: reads in a coroutine, writes from a queue.
class ChatSession : public std::enable_shared_from_this<ChatSession> {
 public:
  explicit ChatSession(websocket::stream<tcp::socket> ws) : ws_(std::move(ws)) {}

  void send(const std::shared_ptr<const std::string>& message) {
    queue_.push_back(message);
    if (queue_.size() == 1) write_next();
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    g_members.insert(this);
    beast::flat_buffer buffer;
    for (;;) {
      auto [error, n] = co_await ws_.async_read(buffer, kNoThrow);
      if (error) break;
      auto message = std::make_shared<const std::string>(beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      for (ChatSession* member : g_members) member->send(message);
    }
    g_members.erase(this);
  }

 private:
  void write_next() {
    ws_.text(true);
    ws_.async_write(asio::buffer(*queue_.front()),
                    [self = shared_from_this()](beast::error_code error, std::size_t) {
                      if (error) {
                        self->queue_.clear();
                        return;
                      }
                      self->queue_.pop_front();
                      if (!self->queue_.empty()) self->write_next();
                    });
  }

  websocket::stream<tcp::socket> ws_;
  std::deque<std::shared_ptr<const std::string>> queue_;
};

asio::awaitable<void> echo(websocket::stream<tcp::socket> ws) {
  beast::flat_buffer buffer;
  for (;;) {
    auto [read_error, n] = co_await ws.async_read(buffer, kNoThrow);
    if (read_error) co_return;
    ws.text(ws.got_text());
    auto [write_error, written] = co_await ws.async_write(buffer.data(), kNoThrow);
    if (write_error) co_return;
    buffer.consume(buffer.size());
  }
}

asio::awaitable<void> session(tcp::socket socket) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  auto [read_error, n] = co_await http::async_read(socket, buffer, request, kNoThrow);
  if (read_error || !websocket::is_upgrade(request)) co_return;
  websocket::stream<tcp::socket> ws(std::move(socket));
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  auto [accept_error] = co_await ws.async_accept(request, kNoThrow);
  if (accept_error) co_return;
  if (request.target() == "/chat") {
    auto member = std::make_shared<ChatSession>(std::move(ws));
    co_await member->run();
  } else {
    co_await echo(std::move(ws));
  }
}

asio::awaitable<void> listener(tcp::acceptor& acceptor) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kNoThrow);
    if (error == asio::error::operation_aborted) co_return;
    if (error) continue;
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
  }
}

}  // namespace

int serve_beast_websocket(int listen_fd, int control_fd) {
  asio::io_context io(1);
  tcp::acceptor acceptor(io, tcp::v4(), listen_fd);
  asio::posix::stream_descriptor control(io, control_fd);
  control.async_wait(asio::posix::stream_descriptor::wait_read, [](boost::system::error_code) {
    std::fflush(nullptr);
    ::_exit(0);
  });
  asio::co_spawn(io, listener(acceptor), asio::detached);
  io.run();
  return 1;
}
