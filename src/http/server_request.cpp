#include "squall/http/server_request.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/http/cookies.hpp"

namespace squall::http {

HTTPServerRequest::HTTPServerRequest(HTTPConnection* connection) : connection_(connection) {
  if (auto* loop = IOLoop::current_or_null()) start_time = loop->time();
}

void HTTPServerRequest::reset(HTTPConnection* connection) {
  // A buffer this large was for an unusual request: not worth keeping.
  constexpr std::size_t kKeep = 64 * 1024;
  method.clear();
  uri.clear();
  version.clear();
  path.clear();
  query.clear();
  std::size_t header_bytes = 0;
  for (HTTPHeaders::Field f : headers) header_bytes += f.name.size() + f.value.size();
  if (header_bytes > kKeep) headers = HTTPHeaders();
  else headers.clear();
  if (body.capacity() > kKeep) std::string().swap(body);
  else body.clear();
  remote_ip.clear();
  protocol = "http";
  host.clear();
  host_name.clear();
  auto* loop = IOLoop::current_or_null();
  start_time = loop ? loop->time() : TimePoint{};
  connection_ = connection;
  finish_time_.reset();
  cookies_.reset();
  arguments_.reset();
  target_host_.clear();
}

void HTTPServerRequest::set_start_line(std::string_view m, std::string_view u, std::string_view v) {
  method.assign(m);
  uri.assign(u);
  version.assign(v);
  std::string_view target = u;
  target_host_.clear();
  // absolute-form (RFC 9112 section 3.2.2): "http://host:port/path?query";
  // routed by its path, and its authority replaces Host (section 3.2.3).
  auto scheme_end = target.find("://");
  if (!target.empty() && target.front() != '/' && scheme_end != std::string_view::npos) {
    std::string_view rest = target.substr(scheme_end + 3);
    std::size_t slash = rest.find_first_of("/?");
    target_host_.assign(rest.substr(0, slash));
    if (slash == std::string_view::npos) {
      target = "/";
    } else if (rest[slash] == '?') {
      path = "/";
      query.assign(rest.substr(slash + 1));
      return;
    } else {
      target = rest.substr(slash);
    }
  }
  std::size_t q = target.find('?');
  path.assign(target.substr(0, q));
  if (q == std::string_view::npos) query.clear();
  else query.assign(target.substr(q + 1));
}

void HTTPServerRequest::update_host() {
  if (!target_host_.empty()) host = target_host_;
  else host.assign(headers.get("Host", "127.0.0.1"));
  if (host.empty()) host = "127.0.0.1";
  // Tornado's split_host_and_port, lower-cased: "[::1]:80" → "[::1]".
  std::string_view h(host);
  if (!h.empty() && h.front() == '[') {
    h = h.substr(0, std::min(h.find(']') + 1, h.size()));
  } else if (auto colon = h.rfind(':'); colon != std::string_view::npos && h.find(':') == colon) {
    h = h.substr(0, colon);
  }
  host_name.assign(h);
  std::transform(host_name.begin(), host_name.end(), host_name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
}

std::string HTTPServerRequest::full_url() const { return protocol + "://" + host + uri; }

Duration HTTPServerRequest::request_time() const {
  if (finish_time_) return *finish_time_ - start_time;
  auto* loop = IOLoop::current_or_null();
  return (loop ? loop->time() : SteadyClock::now()) - start_time;
}

const std::map<std::string, std::string>& HTTPServerRequest::cookies() {
  if (!cookies_) {
    cookies_.emplace();
    for (std::string_view value : headers.get_list("Cookie")) {
      for (auto& [name, v] : parse_cookie(value)) (*cookies_)[name] = v;
    }
  }
  return *cookies_;
}

const QueryArguments& HTTPServerRequest::query_arguments() {
  if (!arguments_) arguments_ = parse_qs(query, /*keep_blank_values=*/true);
  return *arguments_;
}

HTTPConnection* HTTPServerRequest::require_connection() const {
  if (!connection_) throw HTTPOutputError("request has no connection");
  return connection_;
}

Future<void> HTTPServerRequest::write_headers(int code, HTTPHeaders& h, std::string_view first_chunk,
                                              std::string_view reason) {
  return require_connection()->write_headers(code, reason, h, first_chunk);
}

Future<void> HTTPServerRequest::write(std::string_view chunk) { return require_connection()->write(chunk); }

void HTTPServerRequest::finish() {
  HTTPConnection* c = require_connection();
  if (auto* loop = IOLoop::current_or_null()) finish_time_ = loop->time();
  c->finish();
}

Future<void> HTTPServerRequest::respond(int code, HTTPHeaders& h, std::string_view body, std::string_view reason) {
  char length[24];
  auto r = std::to_chars(length, length + sizeof length, body.size());
  h.set("Content-Length", std::string_view(length, static_cast<std::size_t>(r.ptr - length)));
  Future<void> f = write_headers(code, h, body, reason);
  finish();
  return f;
}

Future<void> HTTPServerRequest::respond(int code, std::string_view content_type, std::string_view body) {
  // The headers are lent by a per-thread pool: this, the most common answer,
  // allocates nothing once the pool is warm. A stack, not one object, so a
  // respond() reached from inside another (through a continuation) is safe.
  thread_local std::vector<std::unique_ptr<HTTPHeaders>> spares;
  std::unique_ptr<HTTPHeaders> h;
  if (spares.empty()) {
    h = std::make_unique<HTTPHeaders>();
  } else {
    h = std::move(spares.back());
    spares.pop_back();
    h->clear();
  }
  h->add("Content-Type", content_type);
  struct GiveBack {
    std::vector<std::unique_ptr<HTTPHeaders>>& to;
    std::unique_ptr<HTTPHeaders>& h;
    ~GiveBack() {
      if (to.size() < 16) to.push_back(std::move(h));
    }
  } give_back{spares, h};
  return respond(code, *h, body);
}

}  // namespace squall::http
