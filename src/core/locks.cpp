#include "squall/core/locks.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>

#include "squall/core/log.hpp"

namespace squall {

namespace detail {

// --- WaiterList ----------------------------------------------------------------------

/// The timer of one waiter. Knows whether it ran: if the loop destroys it
/// unrun (remove_timeout, or the loop closing), it tells the list, so the
/// list never removes a timer from a loop that may be gone.
class WaiterList::TimerCallback {
 public:
  explicit TimerCallback(WaiterTicket t) noexcept : t_(t) {}
  TimerCallback(TimerCallback&& o) noexcept : t_(o.t_), armed_(std::exchange(o.armed_, false)) {}
  TimerCallback& operator=(TimerCallback&&) = delete;
  ~TimerCallback() {
    if (armed_) t_.list->timer_dropped(t_);
  }
  void operator()() {
    // The list may be destroyed by the coroutine expire() resumes: disarm
    // first so the destructor does not touch it.
    armed_ = false;
    t_.list->expire(t_);
  }

 private:
  WaiterTicket t_;
  bool armed_ = true;
};

WaiterList::WaiterList(OnTimeout on_timeout) : on_timeout_(on_timeout) {}

WaiterList::~WaiterList() {
  for (Watch* w = watch_; w != nullptr; w = w->prev_) w->alive_ = false;
  watch_ = nullptr;
  clear();
}

WaiterTicket WaiterList::push(FutureStateBase* state, std::optional<TimePoint> deadline, std::uint8_t tag) {
  check_thread();
  std::uint32_t slot;
  if (free_ != kNone) {
    slot = free_;
    free_ = nodes_[slot].next;
  } else {
    if (nodes_.size() >= kNone) throw std::length_error("WaiterList: too many waiters");
    nodes_.emplace_back();
    slot = static_cast<std::uint32_t>(nodes_.size() - 1);
  }
  Node& n = nodes_[slot];
  state->add_ref();
  n.state = state;
  n.tag = tag;
  n.seq = next_seq_++;
  n.live = true;
  n.prev = tail_;
  n.next = kNone;
  if (tail_ != kNone) {
    nodes_[tail_].next = slot;
  } else {
    head_ = slot;
  }
  tail_ = slot;
  ++size_;

  WaiterTicket t{this, slot, n.generation};
  state->set_cancel_handler([t] { t.list->remove(t); });
  if (deadline) {
    try {
      IOLoop& loop = IOLoop::current();
      TimeoutHandle h = loop.call_at(*deadline, TimerCallback(t));
      nodes_[slot].loop = &loop;
      nodes_[slot].timer = h;
      ++armed_;
    } catch (...) {
      remove(t);
      throw;
    }
  }
  return t;
}

FutureStateBase* WaiterList::detach(std::uint32_t slot) noexcept {
  Node& n = nodes_[slot];
  if (n.prev != kNone) {
    nodes_[n.prev].next = n.next;
  } else {
    head_ = n.next;
  }
  if (n.next != kNone) {
    nodes_[n.next].prev = n.prev;
  } else {
    tail_ = n.prev;
  }
  --size_;
  if (n.timer.valid()) {
    TimeoutHandle h = std::exchange(n.timer, {});
    IOLoop* loop = std::exchange(n.loop, nullptr);
    --armed_;
    // Destroys the TimerCallback, whose timer_dropped() finds the timer
    // already cleared. No node is added meanwhile, so `n` stays valid.
    loop->remove_timeout(h);
  }
  FutureStateBase* s = std::exchange(n.state, nullptr);
  n.live = false;
  ++n.generation;  // every ticket naming this waiter goes stale
  n.prev = kNone;
  n.next = free_;
  free_ = slot;
  s->clear_cancel_handler();
  return s;
}

StateRef<FutureStateBase> WaiterList::pop_front() noexcept {
  return StateRef<FutureStateBase>(detach(head_));
}

void WaiterList::remove(WaiterTicket t) noexcept {
  if (!is_current(t)) return;
  FutureStateBase* s = detach(t.slot);
  drop_payload(t.slot);
  // Called from the state's cancel(), which holds its own reference.
  s->release();
}

void WaiterList::expire(WaiterTicket t) {
  if (!is_current(t)) return;
  Node& n = nodes_[t.slot];
  n.timer = {};  // it fired: nothing to remove
  n.loop = nullptr;
  --armed_;
  StateRef<FutureStateBase> s(detach(t.slot));
  drop_payload(t.slot);
  if (s->done()) return;  // failed by hand meanwhile
  // Resolving resumes the waiter, which may destroy this list: last step.
  if (on_timeout_ == OnTimeout::kResolveFalse) {
    static_cast<FutureState<bool>*>(s.get())->set_result(false);
  } else {
    s->set_exception(std::make_exception_ptr(TimeoutError()));
  }
}

void WaiterList::timer_dropped(WaiterTicket t) noexcept {
  if (!is_current(t)) return;
  Node& n = nodes_[t.slot];
  if (n.timer.valid()) {
    n.timer = {};
    n.loop = nullptr;
    --armed_;
  }
}

void WaiterList::clear() noexcept {
  if (head_ == kNone) return;
  // Empty the list before releasing anything: a freed coroutine's cleanup
  // (a guard released, a FutureOr dropped) may call back into the owner, and
  // must find no waiter to hand anything to.
  std::vector<FutureStateBase*> dead;
  try {
    dead.reserve(size_);
  } catch (...) {
    // Without memory, release one at a time; the list stays consistent.
    while (head_ != kNone) {
      std::uint32_t slot = head_;
      FutureStateBase* s = detach(slot);
      drop_payload(slot);
      s->release();
    }
    return;
  }
  while (head_ != kNone) {
    std::uint32_t slot = head_;
    dead.push_back(detach(slot));
    drop_payload(slot);
  }
  for (FutureStateBase* s : dead) s->release();
}

#ifndef NDEBUG
void WaiterList::bind_or_abort() const noexcept {
  std::uintptr_t me = current_thread_tag();
  if (owner_thread_ == 0) {
    owner_thread_ = me;
    return;
  }
  std::fprintf(stderr, "squall: lock or queue %p belongs to thread %#lx but was used on thread %#lx\n",
               static_cast<const void*>(this), static_cast<unsigned long>(owner_thread_),
               static_cast<unsigned long>(me));
  std::abort();
}
#endif

// --- SemaphoreCore -----------------------------------------------------------------

SemaphoreCore::SemaphoreCore(int value, Kind kind) : value_(value), initial_(value), kind_(kind) {
  if (value < 0) throw std::invalid_argument("Semaphore: the initial value must be >= 0");
}

FutureOr<ReleasingGuard> SemaphoreCore::enqueue(std::optional<TimePoint> deadline) {
  Future<ReleasingGuard> f;
  waiters_.push(f.state(), deadline);
  return FutureOr<ReleasingGuard>(std::move(f), kWithdrawIfDropped);
}

void SemaphoreCore::dispatch() noexcept {
  // A waiter resumed below may release (its guard, or an abandoned waiter's
  // guard dying with its Future): that only counts the permit, and this loop
  // hands it on, so hand-offs never nest.
  if (dispatching_) return;
  dispatching_ = true;
  WaiterList::Watch watch(waiters_);
  while (value_ > 0 && !waiters_.empty()) {
    StateRef<FutureStateBase> s = waiters_.pop_front();
    if (s->done()) continue;
    --value_;
    static_cast<FutureState<ReleasingGuard>*>(s.get())->set_result(ReleasingGuard(this));
    s = {};
    if (!watch.alive()) return;  // destroyed by the coroutine it resumed
  }
  dispatching_ = false;
}

void SemaphoreCore::throw_released_too_often() const {
  if (kind_ == Kind::kLock) throw InvalidStateError("release unlocked lock");
  throw InvalidStateError("Semaphore released too many times");
}

void SemaphoreCore::log_released_too_often() const noexcept {
  log::app().error("A guard released a {} that was already released by hand",
                   kind_ == Kind::kLock ? "Lock" : "BoundedSemaphore");
}

}  // namespace detail

// --- Condition ---------------------------------------------------------------------------

Condition::Condition() : waiters_(detail::WaiterList::OnTimeout::kResolveFalse) {}

FutureOr<bool> Condition::enqueue(std::optional<TimePoint> deadline) {
  Future<bool> f;
  waiters_.push(f.state(), deadline);
  return FutureOr<bool>(std::move(f), detail::kWithdrawIfDropped);
}

void Condition::notify(std::size_t n) {
  waiters_.check_thread();
  detail::WaiterList::Watch watch(waiters_);
  const std::uint64_t mark = waiters_.mark();
  while (n > 0 && waiters_.front_before(mark)) {
    detail::StateRef<detail::FutureStateBase> s = waiters_.pop_front();
    if (s->done()) continue;
    --n;
    static_cast<detail::FutureState<bool>*>(s.get())->set_result(true);
    s = {};
    if (!watch.alive()) return;
  }
}

void Condition::notify_all() { notify(waiters_.size()); }

// --- Event ---------------------------------------------------------------------------------

FutureOr<void> Event::enqueue(std::optional<TimePoint> deadline) {
  Future<void> f;
  waiters_.push(f.state(), deadline);
  return FutureOr<void>(std::move(f), detail::kWithdrawIfDropped);
}

void Event::set() {
  waiters_.check_thread();
  if (value_) return;
  value_ = true;
  detail::WaiterList::Watch watch(waiters_);
  const std::uint64_t mark = waiters_.mark();
  while (waiters_.front_before(mark)) {
    detail::StateRef<detail::FutureStateBase> s = waiters_.pop_front();
    if (!s->done()) static_cast<detail::FutureState<void>*>(s.get())->set_result();
    s = {};
    if (!watch.alive()) return;
  }
}

// --- Semaphore, BoundedSemaphore, Lock ----------------------------------------------------

Semaphore::Semaphore(int value) : core_(value, detail::SemaphoreCore::Kind::kSemaphore) {}
Semaphore::Semaphore(int value, detail::SemaphoreCore::Kind kind) : core_(value, kind) {}
BoundedSemaphore::BoundedSemaphore(int value) : Semaphore(value, detail::SemaphoreCore::Kind::kBounded) {}
Lock::Lock() : core_(1, detail::SemaphoreCore::Kind::kLock) {}

}  // namespace squall
