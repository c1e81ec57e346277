// squall's loggers, named like Tornado's: squall.access (one line per
// request), squall.application (errors in user code: callbacks, handlers),
// squall.general (everything else). They are spdlog loggers; include
// <spdlog/spdlog.h> to log through them. Safe to call from any thread.
#pragma once

namespace spdlog {
class logger;
}

namespace squall::log {

spdlog::logger& access();
spdlog::logger& app();
spdlog::logger& general();

enum class Level { trace, debug, info, warning, error, critical, off };
enum class Color { automatic, always, never };

struct PrettyLoggingOptions {
  Level level = Level::info;
  Color color = Color::automatic;  // automatic: colour when stderr is a TTY
  bool timestamps = true;
};

/// Tornado's enable_pretty_logging(): one stderr sink for all three loggers,
/// `[I 221122 04:40:45 ioloop:42] message` style, coloured on a terminal.
void enable_pretty_logging(const PrettyLoggingOptions& options = {});

}  // namespace squall::log
