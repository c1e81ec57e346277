// The snippets of docs/guide/processes.md, compiled. `--smoke` runs the
// Subprocess one (sort through a pipe); the pre-forking server is only
// built, since it forks and serves forever.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "squall/core/future.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/net/iostream.hpp"
#include "squall/net/netutil.hpp"
#include "squall/net/process.hpp"
#include "squall/net/tcpserver.hpp"

squall::Future<void> echo_line(std::unique_ptr<squall::net::IOStream> stream, std::string /*address*/) {
  std::string line = co_await stream->read_until("\n");
  co_await stream->write("child " + std::to_string(squall::net::task_id()) + ": " + line);
}

int serve_prefork() {
  auto sockets = squall::net::bind_sockets(8888);  // before forking: shared by every child
  squall::net::fork_processes(0);                  // 0: one child per CPU
  // From here on we are a child, with no loop yet.
  squall::net::TCPServer server(echo_line);
  server.add_sockets(std::move(sockets));
  squall::IOLoop::current().start();
  return 0;
}

squall::Future<std::string> sorted_lines(std::string text) {
  using squall::net::Stdio;
  squall::net::Subprocess proc({"sort"}, {.stdin_mode = Stdio::Stream, .stdout_mode = Stdio::Stream});
  auto output = proc.stdout_stream()->read_until_close();  // start reading before writing
  co_await proc.stdin_stream()->write(std::move(text));
  proc.stdin_stream()->close();                              // sort sees end of input
  std::string sorted = co_await std::move(output);
  co_await proc.wait_for_exit();                             // CalledProcessError unless 0
  co_return sorted;
}

int main(int argc, char** argv) {
  bool serve = argc > 1 && std::strcmp(argv[1], "--serve") == 0;
  if (serve) return serve_prefork();
  std::string sorted = squall::IOLoop::current().run_sync([] { return sorted_lines("pear\napple\nfig\n"); });
  std::printf("%s", sorted.c_str());
  return sorted == "apple\nfig\npear\n" ? 0 : 1;
}
