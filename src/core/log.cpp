#include "squall/core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <mutex>

namespace squall::log {

namespace {

std::shared_ptr<spdlog::logger> make_logger(const char* name) {
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern("[%L %C%m%d %H:%M:%S %n] %v");
  spdlog::register_logger(logger);
  return logger;
}

struct Loggers {
  std::shared_ptr<spdlog::logger> access = make_logger("squall.access");
  std::shared_ptr<spdlog::logger> app = make_logger("squall.application");
  std::shared_ptr<spdlog::logger> general = make_logger("squall.general");
};

Loggers& loggers() {
  // Leaked on purpose: loggers must outlive every static that may log from
  // its destructor.
  static Loggers* instance = new Loggers();
  return *instance;
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warning: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
    case Level::critical: return spdlog::level::critical;
    case Level::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

spdlog::logger& access() { return *loggers().access; }
spdlog::logger& app() { return *loggers().app; }
spdlog::logger& general() { return *loggers().general; }

void enable_pretty_logging(const PrettyLoggingOptions& options) {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  bool colour = options.color == Color::always || (options.color == Color::automatic && ::isatty(STDERR_FILENO));
  sink->set_color_mode(colour ? spdlog::color_mode::always : spdlog::color_mode::never);
  // Tornado's LogFormatter: [L yymmdd HH:MM:SS module] message
  sink->set_pattern(options.timestamps ? "%^[%L %C%m%d %H:%M:%S %n]%$ %v" : "%^[%L %n]%$ %v");
  for (spdlog::logger* logger : {&access(), &app(), &general()}) {
    logger->sinks().clear();
    logger->sinks().push_back(sink);
    logger->set_level(to_spdlog(options.level));
  }
}

}  // namespace squall::log
