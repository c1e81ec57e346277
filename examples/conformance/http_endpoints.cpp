// The plain HTTP endpoints of the contract (3.1-3.5, 3.7-3.10, 3.13,
// 3.14): each a small RequestHandler.
#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdio>
#include <chrono>
#include <stdexcept>
#include <string>

#include "bounded_body.hpp"
#include "conformance.hpp"
#include "query.hpp"
#include "squall/core/gen.hpp"
#include "squall/http/url.hpp"
#include "squall/web/http_error.hpp"
#include "squall/web/request_handler.hpp"

namespace conformance {
namespace {

using squall::Future;
using squall::web::HTTPError;
using squall::web::RequestHandler;

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

// 3.1
class HelloHandler : public RequestHandler {
 public:
  Future<void> get() override {
    set_header("Content-Type", kTextPlain);
    write("Hello, world");
    co_return;
  }
};

// 3.2
class JsonHandler : public RequestHandler {
 public:
  Future<void> get() override {
    write(nlohmann::json{{"message", "Hello, world"}, {"unicode", "h\u00e9llo w\u00f6rld \u2713"}});
    co_return;
  }
};

// 3.3: names lower-cased, values in the order received.
class HeadersHandler : public RequestHandler {
 public:
  Future<void> get() override {
    nlohmann::json out = nlohmann::json::object();
    for (squall::http::HTTPHeaders::Field field : request().headers) {
      std::string name(field.name);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out[name].push_back(std::string(field.value));
    }
    write(out);  // json_encode: bytes that are not UTF-8 become U+FFFD
    co_return;
  }
};

// 3.4: the body streams in (bounded by --max-body-size) and goes back.
class EchoHandler : public BoundedBodyHandler {
 public:
  using BoundedBodyHandler::BoundedBodyHandler;
  Future<void> post() override {
    set_header("Content-Type", request().headers.get("Content-Type", "application/octet-stream"));
    write(request().body);
    co_return;
  }
};

// 3.5: form-urlencoded decoding of the raw query, blanks kept, nothing trimmed.
class ArgsHandler : public RequestHandler {
 public:
  Future<void> get() override {
    squall::http::QueryArguments args = squall::http::parse_qs(request().query, /*keep_blank_values=*/true);
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, values] : args) {
      if (!valid_utf8(name)) throw HTTPError(400, "argument name is not UTF-8");
      nlohmann::json& list = out[name] = nlohmann::json::array();
      for (const std::string& value : values) {
        if (!valid_utf8(value)) throw HTTPError(400, "argument value is not UTF-8");
        list.push_back(value);
      }
    }
    write(out);
    co_return;
  }
};

// 3.7: each line is flushed to the socket before the pause that follows it.
class StreamHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::int64_t n = int_argument(*this, "n", 10, 0, 10000);
    std::int64_t delay_ms = int_argument(*this, "delay_ms", 0, 0, 5000);
    set_header("Content-Type", kTextPlain);
    for (std::int64_t i = 0; i < n; ++i) {
      if (i > 0 && delay_ms > 0) co_await squall::sleep(std::chrono::milliseconds(delay_ms));
      write("chunk " + std::to_string(i) + "\n");
      co_await flush();
    }
  }
};

// 3.8: a timer, no thread.
class SleepHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::int64_t ms = int_argument(*this, "ms", 0, 0, 60000);
    if (ms > 0) co_await squall::sleep(std::chrono::milliseconds(ms));
    write(nlohmann::json{{"slept_ms", ms}});
  }
};

// 3.9: /status/<digits>; 204 and 304 have no body.
class StatusHandler : public RequestHandler {
 public:
  Future<void> get() override {
    const std::string& text = path_args().at(0);
    int code = 0;
    if (text.size() <= 3) code = std::stoi(text);  // the route allows digits only
    if (code < 200 || code > 599) throw HTTPError(400, "status out of range");
    set_status(code);
    if (code != 204 && code != 304) write(nlohmann::json{{"status", code}});
    co_return;
  }
  // A computed ETag could turn a 200 into a 304; this endpoint answers the
  // status it was asked for.
  std::optional<std::string> compute_etag() override { return std::nullopt; }
};

// 3.10: Location is the decoded `to`, verbatim; control characters are a 400.
class RedirectToHandler : public RequestHandler {
 public:
  Future<void> get() override {
    std::optional<std::string> to = raw_query_argument(*this, "to");
    if (!to || to->empty()) throw HTTPError(400, "missing to");
    for (unsigned char c : *to) {
      if (c < 0x20 || c == 0x7f) throw HTTPError(400, "control character in to");
    }
    redirect(*to);
    co_return;
  }
};

// 3.13: 102000 bytes of text; compress_response gzips it for clients that accept gzip.
class GzipHandler : public RequestHandler {
 public:
  Future<void> get() override {
    set_header("Content-Type", kTextPlain);
    std::string body;
    body.reserve(102000);
    char line[64];
    for (int i = 0; i < 2000; ++i) {
      int n = std::snprintf(line, sizeof line, "%05d The quick brown fox jumps over the lazy dog.\n", i);
      body.append(line, static_cast<std::size_t>(n));
    }
    write(body);
    co_return;
  }
};

// 3.14: the default write_error shows only the status, never what().
class ErrorEndpoint : public RequestHandler {
 public:
  Future<void> get() override {
    throw std::runtime_error("deliberate failure: conformance-secret-7f3a9c");
    co_return;
  }
};

}  // namespace

std::vector<squall::web::Rule> http_rules(const Config& config) {
  using squall::web::handler;
  return {
      {"/hello", handler<HelloHandler>()},
      {"/json", handler<JsonHandler>()},
      {"/headers", handler<HeadersHandler>()},
      {"/echo", handler<EchoHandler>(config.max_body_size)},
      {"/args", handler<ArgsHandler>()},
      {"/stream", handler<StreamHandler>()},
      {"/sleep", handler<SleepHandler>()},
      {"/status/([0-9]+)", handler<StatusHandler>()},
      {"/redirect", handler<RedirectToHandler>()},
      {"/gzip", handler<GzipHandler>()},
      {"/error", handler<ErrorEndpoint>()},
  };
}

}  // namespace conformance
