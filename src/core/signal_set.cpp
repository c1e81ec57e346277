#include "core/signal_set.hpp"

#include <errno.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <system_error>

namespace squall {

SignalSet::SignalSet() {
  sigemptyset(&mask_);
  sigemptyset(&was_blocked_);
}

SignalSet::~SignalSet() {
  for (auto& [signo, fn] : handlers_) {
    if (!sigismember(&was_blocked_, signo)) {
      sigset_t one;
      sigemptyset(&one);
      sigaddset(&one, signo);
      pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    }
  }
}

void SignalSet::add(int signo, UniqueFunction<void(int)> fn) {
  sigset_t one, old;
  sigemptyset(&one);
  sigaddset(&one, signo);
  if (int rc = pthread_sigmask(SIG_BLOCK, &one, &old); rc != 0) {
    throw std::system_error(rc, std::generic_category(), "pthread_sigmask");
  }
  if (!handlers_.contains(signo) && sigismember(&old, signo)) sigaddset(&was_blocked_, signo);
  sigaddset(&mask_, signo);
  handlers_[signo] = std::move(fn);
  update_fd();
}

void SignalSet::remove(int signo) {
  auto it = handlers_.find(signo);
  if (it == handlers_.end()) return;
  auto dead = std::move(it->second);
  handlers_.erase(it);
  sigdelset(&mask_, signo);
  if (!sigismember(&was_blocked_, signo)) {
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  }
  sigdelset(&was_blocked_, signo);
  update_fd();
}

void SignalSet::update_fd() {
  int fd = ::signalfd(fd_ ? fd_.get() : -1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
  if (!fd_) fd_.reset(fd);
}

UniqueFunction<void(int)>* SignalSet::find(int signo) {
  auto it = handlers_.find(signo);
  return it == handlers_.end() ? nullptr : &it->second;
}

void SignalSet::read_pending(int* out, int cap, int& n) {
  signalfd_siginfo info[32];
  ssize_t got = ::read(fd_.get(), info, sizeof(signalfd_siginfo) * static_cast<std::size_t>(cap));
  if (got <= 0) return;  // EAGAIN: nothing pending
  n = static_cast<int>(static_cast<std::size_t>(got) / sizeof(signalfd_siginfo));
  for (int i = 0; i < n; ++i) out[i] = static_cast<int>(info[i].ssi_signo);
}

}  // namespace squall
