// http_client: GETs per second of squall's AsyncHTTPClient (native or curl
// backend) against one URL, for bench/http_client (bench/README-http.md).
//
//   http_client --url http://127.0.0.1:8080/plaintext --backend native --concurrency 1 --duration 5
//
// --concurrency 1 is one keep-alive connection, one request at a time;
// --concurrency N keeps N fetches in flight (max_clients and the per-host
// connection limit are N). A warm-up of --warmup seconds is not counted.
// Prints one JSON line: {"backend": ..., "concurrency": N, "requests": R,
// "seconds": S, "rps": R/S, "errors": E}. Exits 1 if any fetch failed.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "squall/core/gen.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httpclient.hpp"

using namespace squall;
using namespace squall::http;

namespace {

struct Args {
  std::string url;
  std::string backend = "native";
  int concurrency = 1;
  double duration = 5;
  double warmup = 1;
};

struct Counters {
  long requests = 0;
  long errors = 0;
  std::string first_error;
};

/// One worker: fetches back to back until `until` (loop time).
Future<void> worker(AsyncHTTPClient& client, const HTTPRequest& request, TimePoint until, Counters& counters,
                    std::size_t expected_size) {
  IOLoop& loop = IOLoop::current();
  while (loop.time() < until) {
    try {
      HTTPResponse r = co_await client.fetch(request);
      if (r.body.size() != expected_size) throw std::runtime_error("unexpected body: " + r.body);
      ++counters.requests;
    } catch (const std::exception& e) {
      if (counters.errors++ == 0) counters.first_error = e.what();
    }
  }
}

Future<void> phase(AsyncHTTPClient& client, const HTTPRequest& request, int concurrency, Duration length,
                   Counters& counters, std::size_t expected_size) {
  TimePoint until = IOLoop::current().time() + length;
  std::vector<Future<void>> workers;
  for (int i = 0; i < concurrency; ++i) workers.push_back(worker(client, request, until, counters, expected_size));
  co_await multi(std::move(workers));
}

Future<int> run(const Args& args) {
  HTTPClientOptions options;
  options.max_clients = args.concurrency;
  options.max_connections_per_host = args.concurrency;
  auto client =
      AsyncHTTPClient::create(args.backend == "curl" ? HTTPClientBackend::curl : HTTPClientBackend::native, options);
  HTTPRequest request = client->request(args.url);
  request.decompress_response = false;
  // The body's size, to check each answer cheaply.
  HTTPResponse first = co_await client->fetch(request);
  std::size_t expected = first.body.size();

  auto seconds = [](double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); };
  Counters warm;
  if (args.warmup > 0) co_await phase(*client, request, args.concurrency, seconds(args.warmup), warm, expected);

  Counters counted;
  auto start = std::chrono::steady_clock::now();
  co_await phase(*client, request, args.concurrency, seconds(args.duration), counted, expected);
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  client->close();
  std::printf("{\"backend\": \"%s\", \"concurrency\": %d, \"requests\": %ld, \"seconds\": %.3f, \"rps\": %.1f, "
              "\"errors\": %ld}\n",
              args.backend.c_str(), args.concurrency, counted.requests, elapsed,
              static_cast<double>(counted.requests) / elapsed, counted.errors + warm.errors);
  std::fflush(stdout);
  if (counted.errors + warm.errors > 0) {
    std::fprintf(stderr, "http_client: %ld fetches failed; the first: %s\n", counted.errors + warm.errors,
                 (counted.first_error.empty() ? warm.first_error : counted.first_error).c_str());
    co_return 1;
  }
  co_return 0;
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "http_client: %s\nusage: http_client --url URL [--backend native|curl] [--concurrency N] "
               "[--duration S] [--warmup S]\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--url") {
      args.url = value();
    } else if (a == "--backend") {
      args.backend = value();
    } else if (a == "--concurrency") {
      args.concurrency = std::atoi(value().c_str());
    } else if (a == "--duration") {
      args.duration = std::atof(value().c_str());
    } else if (a == "--warmup") {
      args.warmup = std::atof(value().c_str());
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  if (args.url.empty()) usage("--url is required");
  if (args.backend != "native" && args.backend != "curl") usage("--backend is native or curl");
  if (args.concurrency < 1 || args.duration <= 0) usage("--concurrency and --duration must be positive");
  IOLoop loop;
  int status = 1;
  try {
    status = loop.run_sync([&] { return run(args); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_client: %s\n", e.what());
  }
  loop.close(true);
  return status;
}
