#include "squall/core/future.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "squall/core/ioloop.hpp"
#include "squall/core/log.hpp"

namespace squall::detail {

// --- allocation pool ---------------------------------------------------------------

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPoolEnabled = false;  // keep ASan's use-after-free detection
#else
constexpr bool kPoolEnabled = true;
#endif

constexpr std::size_t kGranule = 16;
constexpr std::size_t kClasses = 32;  // blocks up to 512 bytes
constexpr std::uint32_t kMaxCached = 4096;

struct FreeBlock {
  FreeBlock* next;
};
struct Pool {
  FreeBlock* heads[kClasses];
  std::uint32_t counts[kClasses];
};

// Trivially destructible so it is usable while other thread-locals die; the
// reaper below gives the cached blocks back when the thread exits.
constinit thread_local Pool tls_pool{};
constinit thread_local bool tls_pool_closed = false;
constinit thread_local bool tls_reaper_armed = false;

struct PoolReaper {
  ~PoolReaper() {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = tls_pool.heads[c]) {
        tls_pool.heads[c] = b->next;
        ::operator delete(b);
      }
      tls_pool.counts[c] = 0;
    }
    tls_pool_closed = true;
  }
};
thread_local PoolReaper tls_reaper;

std::size_t class_of(std::size_t size) noexcept { return (size + kGranule - 1) / kGranule - 1; }

}  // namespace

void* pool_allocate(std::size_t size) {
  if constexpr (kPoolEnabled) {
    std::size_t c = class_of(size);
    if (c < kClasses) {
      if (FreeBlock* b = tls_pool.heads[c]) {
        tls_pool.heads[c] = b->next;
        --tls_pool.counts[c];
        return b;
      }
      return ::operator new((c + 1) * kGranule);
    }
  }
  return ::operator new(size);
}

void pool_deallocate(void* p, std::size_t size) noexcept {
  if constexpr (kPoolEnabled) {
    std::size_t c = class_of(size);
    if (c < kClasses && !tls_pool_closed && tls_pool.counts[c] < kMaxCached) {
      if (!tls_reaper_armed) [[unlikely]] {
        tls_reaper_armed = true;
        (void)&tls_reaper;  // constructs it, so it runs at thread exit
      }
      auto* b = static_cast<FreeBlock*>(p);
      b->next = tls_pool.heads[c];
      tls_pool.heads[c] = b;
      ++tls_pool.counts[c];
      return;
    }
  }
  ::operator delete(p);
}

// --- stack depth ---------------------------------------------------------------------

constinit thread_local const char* tls_stack_soft_limit = nullptr;

const char* init_stack_soft_limit() noexcept {
  const char* here = static_cast<const char*>(__builtin_frame_address(0));
  void* addr = nullptr;
  std::size_t size = 0;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
  }
  const char* limit;
  if (addr != nullptr && size > 0) {
    const char* top = static_cast<const char*>(addr) + size;
    std::size_t usable = std::min<std::size_t>(size, std::size_t{64} << 20);
    limit = top - usable / 2;
  } else {
    limit = here - (std::size_t{1} << 20);  // unknown stack: allow 1 MiB from here
  }
  tls_stack_soft_limit = limit;
  return limit;
}

void defer_to_loop(Callback cb) { IOLoop::current().add_callback(std::move(cb)); }

#ifndef NDEBUG
std::uintptr_t current_thread_tag() noexcept { return static_cast<std::uintptr_t>(pthread_self()); }

void assert_owner_thread(const void* what, std::uintptr_t owner) noexcept {
  std::uintptr_t me = current_thread_tag();
  if (owner != me) {
    std::fprintf(stderr, "squall: Future %p belongs to thread %#lx but was used on thread %#lx\n", what,
                 static_cast<unsigned long>(owner), static_cast<unsigned long>(me));
    std::abort();
  }
}
#endif

// --- state ---------------------------------------------------------------------------

namespace {

void log_unretrieved(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::app().error("Future exception was never retrieved: {}", ex.what());
  } catch (...) {
    log::app().error("Future exception was never retrieved: unknown exception");
  }
}

void log_callback_failure(const char* what) noexcept {
  try {
    throw;
  } catch (const std::exception& ex) {
    log::app().error("Exception in {}: {}", what, ex.what());
  } catch (...) {
    log::app().error("Exception in {}: unknown exception", what);
  }
}

}  // namespace

FutureStateBase::~FutureStateBase() {
  if (status_ == Status::kPending) {
    // Nobody can complete this state any more: free the coroutines that wait
    // on it (see the lifetime rule in future_state.hpp).
    if (auto* w = first_.target_if<ResumeWaiter>()) w->handle.destroy();
    if (rest_) {
      for (auto& c : *rest_) {
        if (auto* w = c.target_if<ResumeWaiter>()) w->handle.destroy();
      }
    }
  } else if (status_ == Status::kException && !retrieved_) {
    log_unretrieved(exception_);
  }
}

void FutureStateBase::check_done_for_set() {
  check_thread();
  if (done() && !cancelled()) throw InvalidStateError("Future is already done: a result was set twice");
}

bool FutureStateBase::cancel() {
  check_thread();
  if (done()) return false;
  StateRef<FutureStateBase> guard = StateRef<FutureStateBase>::share(this);
  if (producer) {
    producer->request_cancel();
    return true;
  }
  if (CancelHandler hook = std::move(on_cancel_)) {
    try {
      hook();
    } catch (...) {
      log_callback_failure("a cancel handler");
    }
  }
  if (done()) return true;
  exception_ = std::make_exception_ptr(CancelledError());
  complete(Status::kCancelled);
  return true;
}

void FutureStateBase::set_exception(std::exception_ptr e) {
  check_done_for_set();
  if (cancelled()) return;
  if (!e) throw std::invalid_argument("set_exception: null exception_ptr");
  exception_ = std::move(e);
  complete(Status::kException);
}

void FutureStateBase::add_continuation(Continuation c) {
  check_thread();
  if (done()) {
    run(c);
    return;
  }
  if (!first_) {
    first_ = std::move(c);
  } else {
    add_more(std::move(c));
  }
}

void FutureStateBase::add_more(Continuation c) {
  if (!rest_) rest_ = std::make_unique<std::vector<Continuation>>();
  rest_->push_back(std::move(c));
}

void FutureStateBase::complete(Status status) {
  status_ = status;
  on_cancel_ = nullptr;
  if (!first_) return;
  StateRef<FutureStateBase> guard = StateRef<FutureStateBase>::share(this);
  Continuation c = std::move(first_);
  run(c);
  if (rest_ && !rest_->empty()) {
    auto rest = std::move(*rest_);
    rest_->clear();
    for (auto& r : rest) run(r);
  }
}

void FutureStateBase::run(Continuation& c) {
  if (auto* w = c.target_if<ResumeWaiter>()) {
    std::coroutine_handle<> h = std::exchange(w->handle, {});
    c = nullptr;
    if (stack_is_deep()) {
      defer_to_loop(ResumeTask(h, StateRef<FutureStateBase>::share(this)));
    } else {
      h.resume();
    }
    return;
  }
  if (!c) return;
  if (stack_is_deep()) {
    defer_to_loop([ref = StateRef<FutureStateBase>::share(this), cb = std::move(c)]() mutable {
      try {
        cb(*ref);
      } catch (...) {
        log_callback_failure("a Future done callback");
      }
    });
    return;
  }
  try {
    c(*this);
  } catch (...) {
    log_callback_failure("a Future done callback");
  }
}

void finish_coroutine_state(FutureStateBase* s, std::exception_ptr e) noexcept {
  bool is_cancel = false;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    is_cancel = true;
  } catch (...) {
  }
  s->exception_ = std::move(e);
  s->complete(is_cancel ? FutureStateBase::Status::kCancelled : FutureStateBase::Status::kException);
}

}  // namespace squall::detail
