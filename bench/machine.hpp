// The machine-side helpers the load benchmarks (net_echo, websocket) share:
// pinning to a CPU, the descriptor limit, and what /proc says about the
// machine and about a server process.
#pragma once

#include <sched.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

namespace bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Moves the calling process to `cpu`; false if the machine (or the cpuset
/// it runs in) has no such CPU. Not limited by the caller's current
/// affinity: a server forked by a client pinned elsewhere must still move.
inline bool pin_to_cpu(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return sched_setaffinity(0, sizeof one, &one) == 0;
}

/// Raises RLIMIT_NOFILE's soft limit to the hard one: one descriptor per connection.
inline void raise_nofile() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

/// The three load averages of /proc/loadavg.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

/// CPU time `pid`'s main thread has run, in ns (/proc/<pid>/schedstat).
inline std::uint64_t cpu_ns(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
  std::uint64_t ns = 0;
  in >> ns;
  return ns;
}

}  // namespace bench
