// The code shown in docs/guide/http-client.md, compiled and run, so the
// chapter cannot drift from the library: each block between "// guide:"
// markers appears verbatim in it. main() serves a few pages on a port the
// OS picks and runs every block against them with the native backend
// (`--smoke`, what CTest runs, and a plain run are the same program).
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/tcpserver.hpp"

using namespace std::chrono_literals;
using namespace squall;
using namespace squall::http;

namespace {

/// Fails the program, and so the example_guide_snippets_http_client test,
/// when the guide says something the code does not do.
void check(bool ok, const char* claim) {
  if (!ok) {
    std::fprintf(stderr, "guide_snippets_http_client: the guide is wrong: %s\n", claim);
    std::exit(1);
  }
}

// guide: fetch
Future<void> print_page(std::string url) {
  AsyncHTTPClient& client = AsyncHTTPClient::instance();  // this loop's shared client
  HTTPResponse response = co_await client.fetch(url);
  std::cout << response.code << " " << response.body << "\n";
}
// guide: end

// guide: request
Future<HTTPResponse> post_form(std::string url) {
  HTTPRequest request;
  request.url = url;
  request.method = "POST";
  request.body = "name=squall&lang=c%2B%2B";  // Content-Type defaults to a form
  request.headers.add("X-Request-Id", "42");
  request.request_timeout = 5s;
  co_return co_await AsyncHTTPClient::instance().fetch(request);
}
// guide: end

// guide: errors
Future<void> show_errors(std::string url) {
  auto& client = AsyncHTTPClient::instance();
  try {
    co_await client.fetch(url + "/missing");
  } catch (const HTTPClientError& e) {
    std::cout << e.code() << ": " << e.what() << "\n";  // 404: HTTP 404: Not Found
    if (e.response()) std::cout << e.response()->body << "\n";
  }
  // Without raise_error a status is just a response; failures get code 599.
  HTTPResponse r = co_await client.fetch(url + "/missing", /*raise_error=*/false);
  std::cout << r.code << (r.error ? " (error set)" : "") << "\n";
}
// guide: end

// guide: timeouts
Future<void> impatient(std::string url) {
  HTTPRequest request = AsyncHTTPClient::instance().request(url);
  request.connect_timeout = 2s;   // DNS, TCP and TLS
  request.request_timeout = 50ms;  // everything, queueing included
  try {
    co_await AsyncHTTPClient::instance().fetch(request);
  } catch (const HTTPTimeoutError& e) {
    std::cout << e.what() << " [" << e.phase() << "]\n";  // Timeout during request [request]
  }
}
// guide: end

// guide: cancel
Future<void> give_up_early(std::string url) {
  Future<HTTPResponse> slow = AsyncHTTPClient::instance().fetch(url);
  co_await sleep(10ms);
  slow.cancel();  // dequeued if it was waiting, its connection closed if running
  std::cout << "cancelled: " << slow.cancelled() << "\n";
}
// guide: end

// guide: streaming-down
Future<std::size_t> count_bytes(std::string url) {
  std::size_t total = 0;
  HTTPRequest request = AsyncHTTPClient::instance().request(url);
  request.header_callback = [](std::string_view line) { std::cout << "< " << line; };
  request.streaming_callback = [&total](std::string_view chunk) { total += chunk.size(); };
  co_await AsyncHTTPClient::instance().fetch(request);  // response.body stays empty
  co_return total;
}
// guide: end

// guide: streaming-up
Future<void> produce(BodyWriter write) {
  for (int i = 0; i < 3; ++i) {
    co_await write("line " + std::to_string(i) + "\n");  // waits while the socket is full
  }
}

Future<HTTPResponse> upload(std::string url) {
  HTTPRequest request;
  request.url = url;
  request.method = "PUT";
  request.body_producer = produce;  // no Content-Length header: sent chunked
  request.expect_100_continue = true;
  co_return co_await AsyncHTTPClient::instance().fetch(request);
}
// guide: end

// guide: tls
HTTPRequest internal_service(std::string url) {
  HTTPRequest request;
  request.url = url;                             // https://...
  request.ca_certs = "/etc/myapp/internal-ca.pem";  // trust this CA (default: the system's)
  request.client_cert = "/etc/myapp/client.pem";    // mutual TLS, if the server asks
  request.client_key = "/etc/myapp/client.key";
  return request;
}

HTTPRequest development_only(std::string url) {
  HTTPRequest request;
  request.url = url;
  request.validate_cert = false;  // no verification at all: never in production
  return request;
}
// guide: end

// guide: pool
std::unique_ptr<AsyncHTTPClient> crawler_client() {
  HTTPClientOptions options;
  options.max_clients = 64;                  // fetches in flight; more wait in a FIFO queue
  options.max_connections_per_host = 8;      // open connections per (scheme, host, port)
  options.idle_connection_timeout = 30s;     // pooled connections close after this
  options.max_body_size = 10 * 1024 * 1024;  // decoded bytes; larger fails the fetch
  options.defaults.user_agent = "my-crawler/1.0";
  return AsyncHTTPClient::create(HTTPClientBackend::native, options);
}
// guide: end

// guide: configure
void use_curl_everywhere() {
  AsyncHTTPClient::configure(HTTPClientBackend::curl, {.max_clients = 20});
  // From now on instance(), create(options) and HTTPClient() use libcurl.
}
// guide: end

// guide: blocking
int blocking_main(std::string url) {
  HTTPClient client;  // its own loop on its own thread
  try {
    HTTPResponse response = client.fetch(url);
    std::cout << response.body << "\n";
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
// guide: end

Future<void> serve(HTTPServerRequest& req) {
  if (req.path == "/hello") {
    req.respond(200, "text/plain", "Hello, world");
  } else if (req.path == "/form") {
    std::string type(req.headers.get("Content-Type", ""));
    req.respond(200, "text/plain", req.method + " " + type + " " + req.body);
  } else if (req.path == "/slow") {
    co_await sleep(2s);
    req.respond(200, "text/plain", "finally");
  } else if (req.path == "/big") {
    HTTPHeaders h;
    co_await req.write_headers(200, h, std::string(100000, 'b'));
    co_await req.write(std::string(100000, 'b'));
    req.finish();
  } else if (req.path == "/upload") {
    req.respond(200, "text/plain", req.body);
  } else {
    req.respond(404, "text/plain", "nothing here");
  }
}

Future<void> run_all(std::string base) {
  co_await print_page(base + "/hello");
  HTTPResponse form = co_await post_form(base + "/form");
  check(form.body == "POST application/x-www-form-urlencoded name=squall&lang=c%2B%2B", "a POST gets a form type");
  co_await show_errors(base);
  co_await impatient(base + "/slow");
  co_await give_up_early(base + "/slow");
  std::size_t n = co_await count_bytes(base + "/big");
  check(n == 200000, "streaming_callback sees the whole body");
  HTTPResponse up = co_await upload(base + "/upload");
  check(up.body == "line 0\nline 1\nline 2\n", "a body producer streams the upload");
  check(internal_service(base).ca_certs == "/etc/myapp/internal-ca.pem", "request fields");
  check(!development_only(base).validate_cert, "validate_cert off");
  auto crawler = crawler_client();
  HTTPResponse hello = co_await crawler->fetch(base + "/hello");
  check(hello.request->user_agent == "my-crawler/1.0", "defaults apply to fetch(url)");
}

}  // namespace

int main(int /*argc*/, char** /*argv*/) {
  IOLoop loop;
  HTTPServer server{HTTPServer::RequestCallback(serve)};
  int port = server.listen(0, "127.0.0.1");
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  loop.run_sync([&] { return run_all(base); }, 20s);

  // The blocking client talks to a server on another thread's loop.
  std::thread server_thread;
  IOLoop* other = nullptr;
  {
    std::promise<std::pair<IOLoop*, int>> ready;
    server_thread = std::thread([&ready] {
      IOLoop l;
      HTTPServer s{HTTPServer::RequestCallback(serve)};
      int p = s.listen(0, "127.0.0.1");
      ready.set_value({&l, p});
      l.start();
    });
    auto [l, p] = ready.get_future().get();
    other = l;
    check(blocking_main("http://127.0.0.1:" + std::to_string(p) + "/hello") == 0, "the blocking client works");
    check(blocking_main("http://127.0.0.1:" + std::to_string(p) + "/missing") == 1, "errors reach the caller");
  }
  other->add_callback([other] { other->stop(); });
  server_thread.join();
  use_curl_everywhere();
  AsyncHTTPClient::configure(HTTPClientBackend::native);
  return 0;
}
