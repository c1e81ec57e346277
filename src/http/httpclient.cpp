// AsyncHTTPClient's shared part (Tornado's httpclient module): request
// checks, raise_error, the per-loop instance, configure/create, and the
// blocking HTTPClient. The backends live in simple_httpclient.cpp (native)
// and curl_httpclient.cpp (libcurl).
#include "squall/http/httpclient.hpp"

#include <condition_variable>
#include <future>
#include <optional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include "http/curl_httpclient.hpp"
#include "http/simple_httpclient.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/http/httputil.hpp"
#include "squall/net/resolver.hpp"
#include "squall/net/ssl_context.hpp"
#include "squall/net/tcpclient.hpp"

namespace squall::http {

// --- responses and errors ---------------------------------------------------------------

void HTTPResponse::rethrow() const {
  if (error) std::rethrow_exception(error);
}

namespace {

std::string client_error_message(int code, const std::string& message) {
  if (!message.empty()) return message;
  // Tornado's HTTPClientError: "HTTP 404: Not Found".
  return "HTTP " + std::to_string(code) + ": " + std::string(responses(code));
}

std::string timeout_message(const std::string& phase) {
  if (phase == "connect") return "Timeout while connecting";
  if (phase == "queue") return "Timeout in request queue";
  return "Timeout during request";
}

}  // namespace

HTTPClientError::HTTPClientError(int code, const std::string& message, std::shared_ptr<const HTTPResponse> response)
    : Error(client_error_message(code, message)), code_(code), response_(std::move(response)) {}

HTTPTimeoutError::HTTPTimeoutError(std::string phase, const std::string& message)
    : HTTPClientError(599, message.empty() ? timeout_message(phase) : message), phase_(std::move(phase)) {}

HTTPStreamClosedError::HTTPStreamClosedError(const std::string& message) : HTTPClientError(599, message) {}

HTTPBodyTooLargeError::HTTPBodyTooLargeError(std::size_t limit)
    : HTTPClientError(599, "Response body is larger than max_body_size (" + std::to_string(limit) + " bytes)"),
      limit_(limit) {}

// --- configuration -----------------------------------------------------------------------

namespace {

struct Configuration {
  std::mutex mutex;
  HTTPClientBackend backend = HTTPClientBackend::native;
  HTTPClientOptions options;
};

Configuration& configuration() {
  static Configuration c;
  return c;
}

/// The shared clients, one per loop (instance()). A map guarded by a mutex
/// rather than a thread_local: a loop may be closed from another thread
/// than the one that used it.
struct Instances {
  std::mutex mutex;
  std::map<IOLoop*, std::unique_ptr<AsyncHTTPClient>> clients;
};

Instances& instances() {
  static Instances i;
  return i;
}

void close_instance_of(IOLoop* loop) {
  std::unique_ptr<AsyncHTTPClient> client;
  {
    auto& all = instances();
    std::lock_guard lock(all.mutex);
    auto it = all.clients.find(loop);
    if (it == all.clients.end()) return;
    client = std::move(it->second);
    all.clients.erase(it);
  }
  // Outside the lock: closing fails fetches, whose continuations may run.
  if (client) client->close();
}

// Tornado's _SUPPORTED_METHODS.
bool standard_method(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "POST" || m == "PUT" || m == "DELETE" || m == "PATCH" || m == "OPTIONS";
}

/// The checks both of Tornado's clients make before sending anything.
void check_request(const HTTPRequest& r) {
  std::string_view url = r.url;
  auto scheme_end = url.find("://");
  std::string_view scheme = scheme_end == std::string_view::npos ? std::string_view() : url.substr(0, scheme_end);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
    throw std::invalid_argument("Unsupported url scheme: " + r.url);
  }
  if (r.method.empty() || !is_token(r.method)) throw std::invalid_argument("Invalid method: " + r.method);
  if (r.allow_nonstandard_methods) return;
  if (!standard_method(r.method)) {
    throw std::invalid_argument("unknown method " + r.method + " (unless allow_nonstandard_methods is true)");
  }
  bool body_expected = r.method == "POST" || r.method == "PATCH" || r.method == "PUT";
  bool body_present = r.body.has_value() || static_cast<bool>(r.body_producer);
  if (body_expected != body_present) {
    throw std::invalid_argument(std::string("Body must ") + (body_expected ? "" : "not ") + "be None for method " +
                                r.method + " (unless allow_nonstandard_methods is true)");
  }
}

/// fetch()'s coroutine: awaits the backend and applies raise_error.
Future<HTTPResponse> complete_fetch(Future<HTTPResponse> inner, std::shared_ptr<const HTTPRequest> request,
                                   bool raise_error, TimePoint started) {
  HTTPResponse response;
  std::exception_ptr failure;
  try {
    response = co_await std::move(inner);
  } catch (const CancelledError&) {
    throw;  // the caller cancelled: never a 599 response
  } catch (const std::invalid_argument&) {
    throw;  // a bad request is the caller's bug, raise_error or not
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    if (raise_error) std::rethrow_exception(failure);
    response = HTTPResponse{};
    response.code = 599;
    response.error = std::move(failure);
    response.effective_url = request->url;
  }
  if (response.request_time == Duration::zero()) {
    response.request_time = IOLoop::current().time() - started;
    if (response.time_info.total == Duration::zero()) response.time_info.total = response.request_time;
  }
  response.request = std::move(request);
  if (!response.error && (response.code < 200 || response.code >= 300)) {
    std::string message;  // empty: "HTTP <code>: <standard reason>"
    if (!response.reason.empty()) message = "HTTP " + std::to_string(response.code) + ": " + response.reason;
    if (raise_error) {
      throw HTTPClientError(response.code, message, std::make_shared<const HTTPResponse>(std::move(response)));
    }
    // The error carries a copy of the response (the response cannot hold
    // itself): without raise_error the caller mostly reads the response.
    response.error = std::make_exception_ptr(
        HTTPClientError(response.code, message, std::make_shared<const HTTPResponse>(response)));
  }
  co_return response;
}

}  // namespace

// --- AsyncHTTPClient ---------------------------------------------------------------------

AsyncHTTPClient::AsyncHTTPClient(HTTPClientOptions options) : options_(std::move(options)) {}

AsyncHTTPClient::~AsyncHTTPClient() = default;

AsyncHTTPClient& AsyncHTTPClient::instance() {
  IOLoop& loop = IOLoop::current();
  auto& all = instances();
  {
    std::lock_guard lock(all.mutex);
    auto it = all.clients.find(&loop);
    if (it != all.clients.end() && !it->second->closed()) return *it->second;
  }
  HTTPClientBackend backend;
  HTTPClientOptions options;
  {
    auto& config = configuration();
    std::lock_guard lock(config.mutex);
    backend = config.backend;
    options = config.options;
  }
  std::unique_ptr<AsyncHTTPClient> fresh = create(backend, std::move(options));
  AsyncHTTPClient* raw = fresh.get();
  std::unique_ptr<AsyncHTTPClient> replaced;
  bool first = false;
  {
    std::lock_guard lock(all.mutex);
    auto [it, inserted] = all.clients.try_emplace(&loop);
    first = inserted;
    replaced = std::move(it->second);  // one the caller closed (Tornado makes a new one)
    it->second = std::move(fresh);
  }
  replaced.reset();
  if (first) loop.add_close_callback([&loop] { close_instance_of(&loop); });
  return *raw;
}

std::unique_ptr<AsyncHTTPClient> AsyncHTTPClient::create(HTTPClientBackend backend, HTTPClientOptions options) {
  switch (backend) {
    case HTTPClientBackend::curl:
      return make_curl_http_client(std::move(options));
    case HTTPClientBackend::native:
      break;
  }
  return make_simple_http_client(std::move(options));
}

std::unique_ptr<AsyncHTTPClient> AsyncHTTPClient::create(HTTPClientOptions options) {
  return create(configured_backend(), std::move(options));
}

void AsyncHTTPClient::configure(HTTPClientBackend backend, HTTPClientOptions options) {
  auto& config = configuration();
  std::lock_guard lock(config.mutex);
  config.backend = backend;
  config.options = std::move(options);
}

HTTPClientBackend AsyncHTTPClient::configured_backend() {
  auto& config = configuration();
  std::lock_guard lock(config.mutex);
  return config.backend;
}

HTTPRequest AsyncHTTPClient::request(std::string url) const {
  HTTPRequest r = options_.defaults;
  r.url = std::move(url);
  return r;
}

Future<HTTPResponse> AsyncHTTPClient::fetch(std::string url, bool raise_error) {
  return fetch(request(std::move(url)), raise_error);
}

Future<HTTPResponse> AsyncHTTPClient::fetch(HTTPRequest request, bool raise_error) {
  std::shared_ptr<const HTTPRequest> shared;
  try {
    if (closed_) throw HTTPClientError(599, "The HTTP client is closed");
    check_request(request);
    shared = std::make_shared<const HTTPRequest>(std::move(request));
  } catch (...) {
    return make_exception_future<HTTPResponse>(std::current_exception());
  }
  TimePoint started = IOLoop::current().time();
  Future<HTTPResponse> inner = fetch_impl(shared);
  return complete_fetch(std::move(inner), std::move(shared), raise_error, started);
}

// --- HTTPClient ----------------------------------------------------------------------------

namespace {

/// A copy of the exception being handled, as a new exception object, for
/// handing to another thread. The original stays with the loop's futures,
/// which drop their references on the loop's thread; sharing one object
/// would leave its lifetime to std::exception_ptr's reference count, which
/// lives in the (uninstrumented) libstdc++ and so looks like a race to
/// ThreadSanitizer. Types the client throws keep their type; others pass
/// through as they are.
std::exception_ptr copy_for_another_thread() {
  try {
    throw;
  } catch (const HTTPBodyTooLargeError& e) {
    return std::make_exception_ptr(e);
  } catch (const HTTPTimeoutError& e) {
    return std::make_exception_ptr(e);
  } catch (const HTTPStreamClosedError& e) {
    return std::make_exception_ptr(e);
  } catch (const HTTPClientError& e) {
    return std::make_exception_ptr(e);
  } catch (const HTTPInputError& e) {
    return std::make_exception_ptr(e);
  } catch (const net::SSLError& e) {
    return std::make_exception_ptr(e);
  } catch (const net::ConnectError& e) {
    return std::make_exception_ptr(e);
  } catch (const net::ResolveError& e) {
    return std::make_exception_ptr(e);
  } catch (const TimeoutError& e) {
    return std::make_exception_ptr(e);
  } catch (const CancelledError& e) {
    return std::make_exception_ptr(e);
  } catch (const std::invalid_argument& e) {
    return std::make_exception_ptr(e);
  } catch (...) {
    return std::current_exception();
  }
}

}  // namespace

/// The private loop and its thread. The loop, the client and every Future
/// live on the thread; other threads reach them only through add_callback.
struct HTTPClient::Impl {
  std::mutex mutex;  // guards `loop` against close() racing fetch()
  IOLoop* loop = nullptr;
  std::thread thread;

  Impl(HTTPClientBackend backend, HTTPClientOptions options) {
    auto ready = std::make_shared<std::promise<IOLoop*>>();
    auto started = ready->get_future();
    thread = std::thread([backend, options = std::move(options), ready]() mutable {
      std::unique_ptr<IOLoop> own;
      std::unique_ptr<AsyncHTTPClient> client;
      try {
        own = std::make_unique<IOLoop>();
        own->make_current();
        client = AsyncHTTPClient::create(backend, std::move(options));
      } catch (...) {
        ready->set_exception(std::current_exception());
        return;
      }
      current_client = client.get();
      ready->set_value(own.get());
      ready.reset();
      own->start();
      // stop() came from shutdown(): the client goes before its loop, and
      // fetches still pending fail (their callers get the error).
      client->close();
      client.reset();
      current_client = nullptr;
      own->close();
    });
    try {
      loop = started.get();
    } catch (...) {
      thread.join();
      throw;
    }
  }

  ~Impl() { shutdown(); }

  void shutdown() {
    IOLoop* l = nullptr;
    {
      std::lock_guard lock(mutex);
      l = std::exchange(loop, nullptr);
    }
    if (l) l->add_callback([l] { l->stop(); });
    if (thread.joinable()) thread.join();
  }

  /// One fetch's outcome, handed from the loop's thread to the caller's.
  /// Not a std::promise: the caller must end up holding the only reference
  /// to an exception (see copy_for_another_thread), and a promise's shared
  /// state may be freed, exception and all, by the loop's thread.
  struct Outcome {
    std::mutex mutex;
    std::condition_variable ready_cv;
    bool ready = false;
    std::optional<HTTPResponse> response;
    std::exception_ptr error;

    void set(std::optional<HTTPResponse> r, std::exception_ptr e) {
      std::lock_guard lock(mutex);
      response = std::move(r);
      error = std::move(e);
      ready = true;
      ready_cv.notify_one();
    }
  };

  /// A callback that never ran (the loop closed first) still answers.
  struct Answer {
    std::shared_ptr<Outcome> outcome;
    explicit Answer(std::shared_ptr<Outcome> o) : outcome(std::move(o)) {}
    Answer(Answer&&) noexcept = default;
    Answer& operator=(Answer&&) = delete;
    ~Answer() {
      if (outcome) {
        outcome->set(std::nullopt, std::make_exception_ptr(
                                       HTTPClientError(599, "The HTTPClient was closed during the fetch")));
      }
    }
    void operator()(std::optional<HTTPResponse> r, std::exception_ptr e) {
      std::exchange(outcome, nullptr)->set(std::move(r), std::move(e));
    }
  };

  /// Runs `make()` (which builds the request) and the fetch on the loop's
  /// thread; blocks for the outcome.
  template <class Make>
  HTTPResponse fetch(Make make, bool raise_error) {
    auto outcome = std::make_shared<Outcome>();
    {
      std::lock_guard lock(mutex);
      if (!loop) throw HTTPClientError(599, "The HTTPClient is closed");
      loop->add_callback([answer = Answer(outcome), make = std::move(make), raise_error]() mutable {
        Future<HTTPResponse> f{nullptr};
        try {
          f = current_client->fetch(make(*current_client), raise_error);
        } catch (...) {
          answer(std::nullopt, copy_for_another_thread());
          return;
        }
        f.add_done_callback([answer = std::move(answer)](Future<HTTPResponse> finished) mutable {
          try {
            answer(std::move(finished.result()), nullptr);
          } catch (...) {
            answer(std::nullopt, copy_for_another_thread());
          }
        });
      });
    }
    std::unique_lock lock(outcome->mutex);
    outcome->ready_cv.wait(lock, [&] { return outcome->ready; });
    std::exception_ptr error = std::move(outcome->error);
    std::optional<HTTPResponse> response = std::move(outcome->response);
    lock.unlock();
    if (error) std::rethrow_exception(std::move(error));
    return std::move(*response);
  }

  /// The client of the private loop, read on that loop's thread only.
  static thread_local AsyncHTTPClient* current_client;
};

thread_local AsyncHTTPClient* HTTPClient::Impl::current_client = nullptr;

HTTPClient::HTTPClient() {
  HTTPClientBackend backend;
  HTTPClientOptions options;
  {
    auto& config = configuration();
    std::lock_guard lock(config.mutex);
    backend = config.backend;
    options = config.options;
  }
  impl_ = std::make_unique<Impl>(backend, std::move(options));
}

HTTPClient::HTTPClient(HTTPClientBackend backend, HTTPClientOptions options)
    : impl_(std::make_unique<Impl>(backend, std::move(options))) {}

HTTPClient::~HTTPClient() { close(); }

HTTPResponse HTTPClient::fetch(std::string url, bool raise_error) {
  // The request is built on the loop's thread, from the client's defaults.
  return impl_->fetch([url = std::move(url)](AsyncHTTPClient& c) mutable { return c.request(std::move(url)); },
                      raise_error);
}

HTTPResponse HTTPClient::fetch(HTTPRequest request, bool raise_error) {
  return impl_->fetch([request = std::move(request)](AsyncHTTPClient&) mutable { return std::move(request); },
                      raise_error);
}

void HTTPClient::close() { impl_->shutdown(); }

}  // namespace squall::http
