// Boost.Asio side of the echo benchmark (bench/net_echo): the same echo
// server as squall's, written the way the Asio C++20 coroutine examples
// write it. One io_context(1) run by the server process's only thread.
//
// - Accepts on a listening socket it is given (the parent made it, so both
//   servers have the same address and backlog), one co_spawned coroutine per
//   connection.
// - TCP_NODELAY on every accepted socket, as the squall server sets it.
// - Each connection owns a 64 KiB buffer (squall's read chunk size) for its
//   lifetime and loops async_read_some + async_write. Only the pages a
//   connection touched count in VmRSS, so a connection that echoed one small
//   message costs one page of it, not 64 KiB.
// - Errors (the client left, a reset) end the connection quietly:
//   as_tuple(use_awaitable) returns them instead of throwing.
// - Exits (_exit, no teardown) when `control_fd` becomes readable (the
//   parent closed its end), like the squall server.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <memory>
#include <utility>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> session(tcp::socket socket) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::unique_ptr<char[]> buffer(new char[kReadChunk]);
  for (;;) {
    auto [read_error, n] = co_await socket.async_read_some(asio::buffer(buffer.get(), kReadChunk), kNoThrow);
    if (read_error) co_return;
    auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(buffer.get(), n), kNoThrow);
    if (write_error) co_return;
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

int serve_asio_echo(int listen_fd, int control_fd) {
  asio::io_context io(1);
  tcp::acceptor acceptor(io, tcp::v4(), listen_fd);
  asio::posix::stream_descriptor control(io, control_fd);
  control.async_wait(asio::posix::stream_descriptor::wait_read, [](boost::system::error_code) {
    std::fflush(nullptr);
    ::_exit(0);
  });
  asio::co_spawn(io, listener(acceptor), asio::detached);
  io.run();
  return 1;  // run() returns only if the control wait failed
}
