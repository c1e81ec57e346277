// SignalSet: the loop's signal handlers, read from one signalfd. Loop thread
// only; the IOLoop registers the signalfd as an ordinary fd handler.
#pragma once

#include <signal.h>

#include <map>

#include "squall/core/callback.hpp"
#include "squall/core/unique_fd.hpp"

namespace squall {

class SignalSet {
 public:
  SignalSet();
  ~SignalSet();
  SignalSet(const SignalSet&) = delete;
  SignalSet& operator=(const SignalSet&) = delete;

  /// Blocks `signo` in the calling thread and routes it to the signalfd.
  void add(int signo, UniqueFunction<void(int)> fn);
  /// Restores the signal's previous blocked state.
  void remove(int signo);
  bool empty() const noexcept { return handlers_.empty(); }
  int fd() const noexcept { return fd_.get(); }

  /// Reads every pending signal; returns the signal numbers in arrival order.
  template <class Sink>
  void drain(Sink&& sink);
  UniqueFunction<void(int)>* find(int signo);

 private:
  void read_pending(int* out, int cap, int& n);
  void update_fd();

  UniqueFd fd_;
  sigset_t mask_;
  sigset_t was_blocked_;
  std::map<int, UniqueFunction<void(int)>> handlers_;
};

template <class Sink>
void SignalSet::drain(Sink&& sink) {
  int signos[32];
  for (;;) {
    int n = 0;
    read_pending(signos, 32, n);
    for (int i = 0; i < n; ++i) sink(signos[i]);
    if (n < 32) return;
  }
}

}  // namespace squall
