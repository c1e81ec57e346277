// The snippets of docs/guide/http-server.md, compiled. `--smoke` serves one
// request on a port the OS picks and fetches it with a raw socket.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "squall/core/ioloop.hpp"
#include "squall/http/httpserver.hpp"

namespace {

void serve_forever() {
squall::http::HTTPServer server([](squall::http::HTTPServerRequest& req) {
  req.respond(200, "text/plain", "Hello, " + req.remote_ip);
});
server.listen(8888);
squall::IOLoop::current().start();
}

squall::http::HTTPServerOptions proxied_options() {
squall::http::HTTPServerOptions options;
options.xheaders = true;                         // trust X-Real-Ip / X-Forwarded-For, X-Scheme / X-Forwarded-Proto
options.trusted_downstream = {"10.0.0.2"};       // further proxies to skip in X-Forwarded-For
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--serve") == 0) {
    serve_forever();
    return 0;
  }
  // --smoke: the same handler on an OS-chosen port, one GET over loopback.
  auto& loop = squall::IOLoop::current();
  squall::http::HTTPServer server([](squall::http::HTTPServerRequest& req) {
    req.respond(200, "text/plain", "Hello, " + req.remote_ip);
  }, proxied_options());
  int port = server.listen(0, "127.0.0.1");
  std::string reply;
  std::thread client([&] {
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0) {
      const char req[] = "GET / HTTP/1.0\r\n\r\n";
      (void)::write(c, req, sizeof req - 1);
      char buf[4096];
      ssize_t n;
      while ((n = ::read(c, buf, sizeof buf)) > 0) reply.append(buf, static_cast<std::size_t>(n));
    }
    ::close(c);
    loop.add_callback([&loop] { loop.stop(); });
  });
  loop.start();
  client.join();
  std::printf("%s\n", reply.c_str());
  return reply.find("Hello, 127.0.0.1") != std::string::npos ? 0 : 1;
}
