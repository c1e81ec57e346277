#include "squall/testing.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cstdlib>
#include <mutex>
#include <regex>
#include <system_error>
#include <vector>

namespace squall::testing {

namespace {

spdlog::level::level_enum to_spdlog(log::Level level) {
  switch (level) {
    case log::Level::trace: return spdlog::level::trace;
    case log::Level::debug: return spdlog::level::debug;
    case log::Level::info: return spdlog::level::info;
    case log::Level::warning: return spdlog::level::warn;
    case log::Level::error: return spdlog::level::err;
    case log::Level::critical: return spdlog::level::critical;
    case log::Level::off: return spdlog::level::off;
  }
  return spdlog::level::warn;
}

/// Sees every record of squall's loggers: hands it to a matching ExpectLog
/// or, if it is a warning or worse, remembers it as unexpected.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  struct Expectation {
    int id;
    std::string logger;
    std::regex pattern;
    spdlog::level::level_enum level;
    int matched = 0;
  };

  int expect(std::string logger, const std::string& regex, spdlog::level::level_enum level) {
    std::lock_guard lock(mutex_);
    int id = next_id_++;
    expectations_.push_back(Expectation{id, std::move(logger), std::regex(regex), level});
    return id;
  }
  int matched(int id) {
    std::lock_guard lock(mutex_);
    for (auto& e : expectations_) {
      if (e.id == id) return e.matched;
    }
    return 0;
  }
  void forget(int id) {
    std::lock_guard lock(mutex_);
    std::erase_if(expectations_, [id](const Expectation& e) { return e.id == id; });
  }
  std::vector<std::string> take_unexpected() {
    std::lock_guard lock(mutex_);
    return std::exchange(unexpected_, {});
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string text(msg.payload.data(), msg.payload.size());
    std::string logger(msg.logger_name.data(), msg.logger_name.size());
    for (auto& e : expectations_) {
      if (e.logger == logger && msg.level >= e.level && std::regex_search(text, e.pattern)) {
        ++e.matched;
        return;
      }
    }
    if (msg.level >= spdlog::level::warn) unexpected_.push_back(logger + ": " + text);
  }
  void flush_() override {}

 private:
  std::vector<Expectation> expectations_;
  std::vector<std::string> unexpected_;
  int next_id_ = 1;
};

CaptureSink& capture() {
  static std::shared_ptr<CaptureSink> sink = [] {
    auto s = std::make_shared<CaptureSink>();
    for (spdlog::logger* logger : {&log::access(), &log::app(), &log::general()}) logger->sinks().push_back(s);
    return s;
  }();
  return *sink;
}

}  // namespace

AsyncTest::AsyncTest() = default;
AsyncTest::~AsyncTest() = default;

void AsyncTest::SetUp() {
  capture().take_unexpected();
  if (use_virtual_clock()) clock_ = std::make_shared<VirtualClock>();
  loop_ = std::make_unique<IOLoop>(IOLoop::Options{.clock = clock_, .make_current = false});
  loop_->make_current();
}

void AsyncTest::TearDown() {
  if (loop_) {
    loop_->close(true);
    loop_->clear_current();
    loop_.reset();
  }
  for (const auto& record : capture().take_unexpected()) {
    ADD_FAILURE() << "unexpected log record during the test: " << record;
  }
}

Duration AsyncTest::async_test_timeout() const {
  if (const char* env = std::getenv("SQUALL_ASYNC_TEST_TIMEOUT")) {
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(std::strtod(env, nullptr)));
  }
  return std::chrono::seconds(5);
}

void AsyncTest::run_coroutine_test(UniqueFunction<Future<void>()> body) {
  try {
    loop_->run_sync([&body] { return body(); }, async_test_timeout());
  } catch (const TimeoutError& e) {
    ADD_FAILURE() << "the coroutine test did not finish: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "the coroutine test threw: " << e.what();
  }
}

ExpectLog::ExpectLog(std::string logger, std::string regex, bool required, log::Level level)
    : required_(required), description_(logger + " ~ /" + regex + "/") {
  id_ = capture().expect(std::move(logger), regex, to_spdlog(level));
}

ExpectLog::~ExpectLog() {
  if (required_ && capture().matched(id_) == 0) ADD_FAILURE() << "expected log record not seen: " << description_;
  capture().forget(id_);
}

int ExpectLog::matched() const { return capture().matched(id_); }

std::pair<UniqueFd, int> bind_unused_port(bool ipv6) {
  UniqueFd fd(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_storage storage{};
  socklen_t len;
  if (ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), len) != 0 || ::listen(fd.get(), 128) != 0) {
    throw std::system_error(errno, std::generic_category(), "bind_unused_port");
  }
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    throw std::system_error(errno, std::generic_category(), "getsockname");
  }
  int port = ipv6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port)
                  : ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  return {std::move(fd), port};
}

}  // namespace squall::testing
