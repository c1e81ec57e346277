// The snippets of docs/guide/http-client.md's "The libcurl backend",
// compiled. `--smoke` runs each one against a squall server on 127.0.0.1
// that plays origin and forward proxy at once.
#include <curl/curl.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/http/httpserver.hpp"

using namespace squall;
using namespace squall::http;

namespace {

std::unique_ptr<AsyncHTTPClient> make_curl_client() {
HTTPClientOptions options;
options.max_clients = 32;
auto client = AsyncHTTPClient::create(HTTPClientBackend::curl, options);
  return client;
}

HTTPRequest via_proxy(std::string url, std::string proxy_host, int proxy_port) {
HTTPRequest request;
request.url = url;                    // http:// goes to the proxy as an absolute URI,
request.proxy_host = proxy_host;      // https:// through a CONNECT tunnel
request.proxy_port = proxy_port;
request.proxy_username = "me";
request.proxy_password = "secret";
request.proxy_auth_mode = "basic";    // or "digest"
  return request;
}

HTTPRequest with_digest(std::string url) {
HTTPRequest request;
request.url = url;
request.auth_username = "alice";
request.auth_password = "s3cret";
request.auth_mode = "digest";  // curl answers the server's challenge
  return request;
}

HTTPRequest over_http2(std::string url) {
HTTPRequest request;
request.url = url;
request.http_version = "2";  // HTTP/2 if the server agrees (ALPN), else HTTP/1.1
  return request;
}

HTTPRequest tuned(std::string url) {
HTTPRequest request;
request.url = url;
request.prepare_curl_callback = [](void* handle) {
  CURL* curl = static_cast<CURL*>(handle);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);  // abort below 1 KiB/s...
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);     // ...sustained for 30 s
};
  return request;
}

/// Fetches each request above from `base` (an origin that is also a proxy).
Future<int> smoke(std::string base, int port) {
  std::unique_ptr<AsyncHTTPClient> client = make_curl_client();
  int failures = 0;
  HTTPRequest requests[] = {via_proxy("http://origin.test/page", "127.0.0.1", port), with_digest(base + "/digest"),
                            over_http2(base + "/h2"), tuned(base + "/tuned")};
  for (HTTPRequest& request : requests) {
    HTTPResponse response = co_await client->fetch(request, false);
    std::printf("%d %s\n", response.code, response.body.c_str());
    if (response.code != 200) ++failures;
  }
  co_return failures;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--smoke") != 0) {
    std::fprintf(stderr, "usage: guide_snippets_curl --smoke\n");
    return 2;
  }
  IOLoop loop;
  int failures = 0;
  {
    // Answers absolute-form targets as a forward proxy would, the rest as
    // an origin.
    HTTPServer server([](HTTPServerRequest& req) {
      bool proxied = req.uri.rfind("http://", 0) == 0;
      req.respond(200, "text/plain", (proxied ? "proxied " : "origin ") + req.uri);
    });
    int port = server.listen(0, "127.0.0.1");
    failures = loop.run_sync([&] { return smoke("http://127.0.0.1:" + std::to_string(port), port); });
  }
  loop.close(true);
  return failures == 0 ? 0 : 1;
}
