// squall-fetch: fetch a URL from the command line (Tornado's
// `python -m tornado.httpclient URL`), on either client backend.
//
//   squall-fetch http://127.0.0.1:8888/                 the body to stdout
//   squall-fetch --print-headers --no-print-body URL    the head only
//   squall-fetch --method PUT --data-file big.bin URL   uploads, streamed
//   squall-fetch -H 'Accept: application/json' URL      extra header fields
//   squall-fetch -o out.iso URL                         to a file, with a progress bar
//   squall-fetch --backend curl --http-version 2 URL    libcurl, HTTP/2
//   squall-fetch --smoke                                fetch from a server it starts itself
//
// Exit status: 0 success (2xx), 1 usage error, 2 an HTTP status outside
// 200-299, 3 could not connect or resolve the host, 4 timeout, 5 TLS
// failure (certificate verification, handshake), 6 anything else.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"
#include "squall/http/httpserver.hpp"
#include "squall/net/resolver.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/net/tcpclient.hpp"

using namespace squall;
using namespace squall::http;

namespace {

enum ExitCode : int {
  kOk = 0,
  kUsage = 1,
  kHTTPStatus = 2,
  kConnect = 3,
  kTimeout = 4,
  kTLS = 5,
  kOther = 6,
};

struct Options {
  std::string url;
  std::string method;  // empty: GET, or POST with --data/--data-file
  std::optional<std::string> data;
  std::string data_file;
  std::vector<std::string> headers;
  bool print_headers = false;
  bool print_body = true;
  bool follow_redirects = true;
  int max_redirects = 5;
  std::string backend = "native";
  double timeout = 20;
  double connect_timeout = 20;
  bool insecure = false;
  std::string ca_certs;
  std::string output;
  std::string user;        // USER:PASSWORD
  std::string auth_mode = "basic";
  std::string proxy;       // HOST:PORT (curl backend)
  std::string http_version;
  bool verbose = false;
};

Duration seconds(double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }

/// A progress line on stderr, redrawn at most ten times a second.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  void set_total(std::uint64_t total) { total_ = total; }
  void add(std::size_t n) {
    done_ += n;
    auto now = std::chrono::steady_clock::now();
    if (enabled_ && now - last_ >= std::chrono::milliseconds(100)) {
      last_ = now;
      draw();
    }
  }
  void finish() {
    if (!enabled_ || !drawn_) return;
    draw();
    std::fputc('\n', stderr);
  }

 private:
  void draw() {
    drawn_ = true;
    double mib = static_cast<double>(done_) / (1024.0 * 1024.0);
    if (total_ > 0) {
      constexpr int kWidth = 40;
      double fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
      int filled = static_cast<int>(fraction * kWidth);
      std::fprintf(stderr, "\r[%.*s%*s] %5.1f%% %.1f MiB", filled, "########################################",
                   kWidth - filled, "", fraction * 100.0, mib);
    } else {
      std::fprintf(stderr, "\r%.1f MiB", mib);
    }
    std::fflush(stderr);
  }

  bool enabled_;
  bool drawn_ = false;
  std::uint64_t total_ = 0;
  std::uint64_t done_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

/// The exit status for a failure without an HTTP status.
int classify(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const HTTPTimeoutError&) {
    return kTimeout;
  } catch (const TimeoutError&) {
    return kTimeout;
  } catch (const net::ConnectError&) {
    return kConnect;
  } catch (const net::ResolveError&) {
    return kConnect;
  } catch (const net::SSLError&) {
    return kTLS;
  } catch (const HTTPClientError& e) {
    return e.code() == 599 ? kOther : kHTTPStatus;
  } catch (...) {
    return kOther;
  }
}

std::string describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

/// Streams `path` as the request body, 64 KiB at a time.
Future<void> produce_file(std::string path, BodyWriter write) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::string chunk(64 * 1024, '\0');
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    auto n = static_cast<std::size_t>(in.gcount());
    if (n == 0) break;
    co_await write(chunk.substr(0, n));
  }
}

/// Builds the request from the options; throws CLI::ValidationError for
/// what the options parser cannot check alone.
HTTPRequest build_request(const Options& o) {
  HTTPRequest req;
  req.url = o.url;
  bool has_data = o.data.has_value() || !o.data_file.empty();
  req.method = !o.method.empty() ? o.method : (has_data ? "POST" : "GET");
  for (const auto& h : o.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0) throw CLI::ValidationError("-H", "expected 'Name: value', got '" + h + "'");
    std::string_view value(h);
    value.remove_prefix(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    try {
      req.headers.add(std::string_view(h).substr(0, colon), value);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("-H", e.what());
    }
  }
  if (o.data) {
    req.body = *o.data;
  } else if (!o.data_file.empty()) {
    std::error_code ec;
    auto size = std::filesystem::file_size(o.data_file, ec);
    if (ec) throw CLI::ValidationError("--data-file", o.data_file + ": " + ec.message());
    if (!req.headers.contains("Content-Length")) req.headers.add("Content-Length", std::to_string(size));
    req.body_producer = [path = o.data_file](BodyWriter write) { return produce_file(path, std::move(write)); };
  }
  // Whatever method the user names goes out as given.
  req.allow_nonstandard_methods = true;
  req.follow_redirects = o.follow_redirects;
  req.max_redirects = o.max_redirects;
  req.request_timeout = seconds(o.timeout);
  req.connect_timeout = seconds(o.connect_timeout);
  req.validate_cert = !o.insecure;
  req.ca_certs = o.ca_certs;
  if (!o.user.empty()) {
    auto colon = o.user.find(':');
    req.auth_username = o.user.substr(0, colon);
    req.auth_password = colon == std::string::npos ? "" : o.user.substr(colon + 1);
    req.auth_mode = o.auth_mode;
  }
  if (!o.proxy.empty()) {
    auto colon = o.proxy.rfind(':');
    if (colon == std::string::npos) throw CLI::ValidationError("--proxy", "expected HOST:PORT");
    req.proxy_host = o.proxy.substr(0, colon);
    try {
      req.proxy_port = std::stoi(o.proxy.substr(colon + 1));
    } catch (const std::exception&) {
      throw CLI::ValidationError("--proxy", "bad port in '" + o.proxy + "'");
    }
  }
  req.http_version = o.http_version;
  return req;
}

/// The fetch itself; writes to `out` (stdout or the -o file). Returns the
/// exit status.
Future<int> fetch(const Options& o, HTTPRequest req, std::FILE* out, std::FILE* err) {
  HTTPClientBackend backend = o.backend == "curl" ? HTTPClientBackend::curl : HTTPClientBackend::native;
  HTTPClientOptions client_options;
  // The body streams to its destination: a download of any size keeps
  // memory flat, so the usual in-memory limit does not apply.
  client_options.max_body_size = std::numeric_limits<std::size_t>::max() / 2;
  auto client = AsyncHTTPClient::create(backend, client_options);

  Progress progress(!o.output.empty() && ::isatty(STDERR_FILENO));
  bool write_failed = false;
  if (o.print_body || !o.output.empty()) {
    req.streaming_callback = [&](std::string_view chunk) {
      if (std::fwrite(chunk.data(), 1, chunk.size(), out) != chunk.size()) write_failed = true;
      progress.add(chunk.size());
    };
  } else {
    req.streaming_callback = [](std::string_view) {};
  }
  req.header_callback = [&](std::string_view line) {
    // The head of the final response, as it arrives (before the body).
    if (o.print_headers) std::fwrite(line.data(), 1, line.size(), stdout);
    // Content-Length of the final response, for the progress bar.
    constexpr std::string_view kName = "content-length:";
    if (line.size() > kName.size() && iequals(line.substr(0, kName.size()), kName)) {
      try {
        progress.set_total(std::stoull(std::string(line.substr(kName.size()))));
      } catch (const std::exception&) {
      }
    }
  };

  HTTPResponse response = co_await client->fetch(std::move(req), false);
  progress.finish();
  if (response.code == 599 && response.error) {
    std::fprintf(err, "squall-fetch: %s\n", describe(response.error).c_str());
    co_return classify(response.error);
  }
  if (write_failed) {
    std::fprintf(err, "squall-fetch: writing the body failed: %s\n", std::strerror(errno));
    co_return kOther;
  }
  if (o.verbose) {
    std::fprintf(err, "squall-fetch: %d %s from %s in %.3f s\n", response.code, response.reason.c_str(),
                 response.effective_url.c_str(), std::chrono::duration<double>(response.request_time).count());
  }
  if (response.code < 200 || response.code >= 300) {
    std::fprintf(err, "squall-fetch: HTTP %d: %s\n", response.code, response.reason.c_str());
    co_return kHTTPStatus;
  }
  co_return kOk;
}

/// One fetch on `loop`, with -o handled; returns the exit status.
int run(const Options& o, IOLoop& loop) {
  HTTPRequest req;
  try {
    req = build_request(o);
  } catch (const CLI::Error& e) {
    std::fprintf(stderr, "squall-fetch: %s\n", e.what());
    return kUsage;
  }
  std::FILE* out = stdout;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(nullptr, &std::fclose);
  if (!o.output.empty()) {
    file.reset(std::fopen(o.output.c_str(), "wb"));
    if (!file) {
      std::fprintf(stderr, "squall-fetch: cannot write %s: %s\n", o.output.c_str(), std::strerror(errno));
      return kOther;
    }
    out = file.get();
  }
  int status = kOther;
  try {
    status = loop.run_sync([&] { return fetch(o, std::move(req), out, stderr); });
  } catch (const std::invalid_argument& e) {
    // A request the client refuses before sending (scheme, method, body).
    std::fprintf(stderr, "squall-fetch: %s\n", e.what());
    status = kUsage;
  } catch (...) {
    std::fprintf(stderr, "squall-fetch: %s\n", describe(std::current_exception()).c_str());
    status = classify(std::current_exception());
  }
  std::fflush(stdout);
  if (file && std::fclose(file.release()) != 0) {
    std::fprintf(stderr, "squall-fetch: writing %s failed: %s\n", o.output.c_str(), std::strerror(errno));
    return kOther;
  }
  return status;
}

/// --smoke: a server on 127.0.0.1 on the same loop, fetched once with each
/// backend through the same code path as a real run.
int smoke(IOLoop& loop) {
  HTTPServer server([](HTTPServerRequest& req) {
    req.respond(200, "text/plain", "squall-fetch smoke: " + req.method + " " + req.body + "\n");
  });
  int port = server.listen(0, "127.0.0.1");
  int status = kOk;
  for (const char* backend : {"native", "curl"}) {
    Options o;
    o.url = "http://127.0.0.1:" + std::to_string(port) + "/";
    o.backend = backend;
    o.data = backend;
    o.print_headers = true;
    o.timeout = 10;
    int rc = run(o, loop);
    if (rc != kOk) status = rc;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"squall-fetch: fetch a URL and print the response body (squall's HTTP client)"};
  app.footer(
      "Exit status: 0 success (2xx), 1 usage error, 2 HTTP status outside 200-299,\n"
      "3 could not connect or resolve, 4 timeout, 5 TLS failure, 6 other error.");
  Options o;
  bool smoke_run = false;
  app.add_option("url", o.url, "http:// or https:// URL");
  app.add_option("-X,--method", o.method, "request method (default GET, or POST with --data)");
  auto* data = app.add_option("-d,--data", o.data, "request body");
  app.add_option("--data-file", o.data_file, "request body from a file (streamed)")->excludes(data);
  // One value per -H: a vector option would otherwise swallow the URL too.
  app.add_option("-H,--header", o.headers, "extra header field 'Name: value' (repeatable)")
      ->allow_extra_args(false);
  app.add_flag("-i,--print-headers", o.print_headers, "print the status line and header fields");
  app.add_flag("--print-body,!--no-print-body", o.print_body, "print the body (default on)");
  app.add_flag("-L,--follow-redirects,!--no-follow-redirects", o.follow_redirects, "follow redirects (default on)");
  app.add_option("--max-redirects", o.max_redirects, "redirects followed at most (default 5)");
  app.add_option("--backend", o.backend, "client backend (default native)")->check(CLI::IsMember({"native", "curl"}));
  app.add_option("--timeout", o.timeout, "request timeout in seconds (default 20)")->check(CLI::PositiveNumber);
  app.add_option("--connect-timeout", o.connect_timeout, "connect timeout in seconds (default 20)")
      ->check(CLI::PositiveNumber);
  app.add_flag("-k,--insecure", o.insecure, "do not verify the server's TLS certificate");
  app.add_option("--ca-certs", o.ca_certs, "PEM file of CA certificates to verify the server with")
      ->check(CLI::ExistingFile);
  app.add_option("-o,--output", o.output, "write the body to FILE (a progress bar shows on a terminal)");
  app.add_option("-u,--user", o.user, "USER:PASSWORD for HTTP authentication");
  app.add_option("--auth-mode", o.auth_mode, "basic (default) or digest (curl backend)")
      ->check(CLI::IsMember({"basic", "digest"}));
  app.add_option("--proxy", o.proxy, "HOST:PORT of an HTTP proxy (curl backend)");
  app.add_option("--http-version", o.http_version, "1.1, 2 or 2-prior-knowledge (curl backend)");
  app.add_flag("-v,--verbose", o.verbose, "print the status and timing to stderr");
  app.add_flag("--smoke", smoke_run, "fetch from a server started on 127.0.0.1, with both backends, and exit");
  try {
    app.parse(argc, argv);
    if (!smoke_run && o.url.empty()) throw CLI::RequiredError("url");
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  }
  IOLoop loop;
  int status = smoke_run ? smoke(loop) : run(o, loop);
  loop.close(true);
  return status;
}
