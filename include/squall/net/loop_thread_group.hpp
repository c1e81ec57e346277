// LoopThreadGroup: N threads in one process, each running its own IOLoop:
// the C++ way to use several cores (each loop serving its own SO_REUSEPORT
// listener), beside Tornado's fork_processes. The group's own methods are for
// the thread that created it, never one of its loops; each loop is used on
// its own thread, as always (IOLoop::add_callback from anywhere).
//
// Threads or processes? (docs/guide/many-cores.md has the long version.)
// - LoopThreadGroup: one process, so one address space, one set of file
//   descriptors, one log, one deployment unit; read-only data (a loaded
//   configuration, a template cache, a TLS context) is shared for free, and
//   stop() is a clean, synchronous shutdown. But a crash in one loop takes
//   the whole process down, and anything mutable shared between loops needs
//   locks (or, better, add_callback to the loop that owns it).
// - fork_processes (process.hpp): isolation (a crash or a leak kills one
//   child, which is restarted), nothing shared by accident, Tornado's
//   model; costs a process per core and needs every shared thing to go
//   through something external (Redis, a database).
// Both scale accepting the same way: a listener per loop with
// SO_REUSEPORT (threads) or one inherited listener (processes).
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/net/netutil.hpp"
#include "squall/net/tcpserver.hpp"

namespace squall::net {

struct LoopThreadGroupOptions {
  /// How many loops (one thread each); 0: one per CPU this process may run
  /// on (sched_getaffinity(2)).
  std::size_t threads = 0;
  /// Thread names, for top -H, gdb and perf: "<name>-<index>", cut to the
  /// 15 characters Linux keeps (pthread_setname_np(3)).
  std::string name = "squall-loop";
};

/// N started IOLoops, each on its own thread.
///
///   LoopThreadGroup group({.threads = 4});
///   int port = group.serve([](IOLoop&, std::size_t) { return std::make_unique<EchoServer>(); }, 8888);
///   ...
///   group.stop();  // servers destroyed on their threads, loops stopped, threads joined
///
/// Objects that live on a loop (servers, clients, connection pools) are
/// created there with run_on_each() and kept by the group, which destroys
/// them on their own loop's thread in stop(), before the loop closes.
class LoopThreadGroup {
 public:
  /// Starts the threads and their loops; returns once every loop exists.
  explicit LoopThreadGroup(LoopThreadGroupOptions options = {});
  LoopThreadGroup(const LoopThreadGroup&) = delete;
  LoopThreadGroup& operator=(const LoopThreadGroup&) = delete;
  /// stop().
  ~LoopThreadGroup();

  std::size_t size() const noexcept { return slots_.size(); }
  /// Loop `index`. Valid as long as the group; after stop() it is closed.
  /// From other threads, only add_callback may be called on it.
  IOLoop& loop(std::size_t index) const;

  /// Runs `fn(loop, index)` (or `fn(loop)`) on every loop's thread at once
  /// and returns when all have run. Each loop gets its own copy of `fn`;
  /// the copies run concurrently, so what they share by reference they
  /// must only read. `fn` may return void, or a std::unique_ptr<T>
  /// that the group keeps, and destroys on that loop's thread in stop()
  /// (last kept, first destroyed). Rethrows the first exception `fn` threw
  /// (objects other loops returned are kept). InvalidStateError if called
  /// from one of the group's loops (it would wait for itself) or after
  /// stop().
  template <class F>
  void run_on_each(F fn) {
    run(0, size(), make_task(std::move(fn)));
  }

  /// The same, on loop `index` only.
  template <class F>
  void run_on(std::size_t index, F fn) {
    if (index >= size()) throw std::out_of_range("LoopThreadGroup::run_on: no such loop");
    run(index, index + 1, make_task(std::move(fn)));
  }

  /// Makes a server per loop, `make_server(loop, index)` on that loop's
  /// thread, and has each listen on the same `port` and `address` with
  /// SO_REUSEPORT, so the kernel spreads new connections over the loops
  /// (socket(7): by a hash of the connection's addresses, so one client's
  /// connections may all land on one loop). With port 0, the first loop's
  /// server picks the port and the others join it. Returns the port. The
  /// servers are kept like run_on_each's objects.
  int serve(std::function<std::unique_ptr<TCPServer>(IOLoop& loop, std::size_t index)> make_server, int port,
            const std::string& address = "", BindOptions options = {});

  /// Destroys the kept objects on their loops' threads (so servers stop
  /// accepting), stops every loop, joins the threads and closes the loops.
  /// Connections that are still open are abandoned with their loop: close
  /// them first. Idempotent; not from one of the group's loops.
  void stop();

 private:
  /// What runs on a loop: returns the object to keep, if any. shared_ptr<void>
  /// for its type-erased deleter only; the group is the sole owner.
  using Task = std::function<std::shared_ptr<void>(IOLoop&, std::size_t)>;
  struct Slot;

  template <class F>
  static Task make_task(F fn) {
    return [fn = std::move(fn)](IOLoop& loop, std::size_t index) mutable -> std::shared_ptr<void> {
      auto call = [&]() -> decltype(auto) {
        if constexpr (std::is_invocable_v<F&, IOLoop&, std::size_t>) {
          return fn(loop, index);
        } else {
          return fn(loop);
        }
      };
      if constexpr (std::is_void_v<decltype(call())>) {
        call();
        return nullptr;
      } else {
        return std::shared_ptr<void>(call());
      }
    };
  }

  void run(std::size_t first, std::size_t last, Task task);
  void check_caller(const char* what) const;

  std::vector<std::unique_ptr<Slot>> slots_;
  bool stopped_ = false;
};

}  // namespace squall::net
