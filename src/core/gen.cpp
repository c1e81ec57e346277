#include "squall/core/gen.hpp"

#include <spdlog/spdlog.h>

#include <string>

#include "squall/core/ioloop.hpp"
#include "squall/core/log.hpp"

namespace squall {

namespace {

using detail::ChildObserver;
using detail::FutureStateBase;
using detail::StateRef;

std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

bool is_cancelled_error(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

bool is_quiet(const ExceptionFilter& quiet, const std::exception_ptr& e) noexcept {
  if (!quiet) return false;
  try {
    return quiet(e);
  } catch (...) {
    return false;
  }
}

/// Retrieves the failure of a child nobody waits for any more and logs it,
/// unless it is a cancellation or the filter says it is expected. Retrieving
/// it also keeps the state from logging it a second time as never retrieved.
void log_abandoned_failure(FutureStateBase& child, const ExceptionFilter& quiet, const char* message) noexcept {
  std::exception_ptr e = child.exception();
  if (!e || is_cancelled_error(e) || is_quiet(quiet, e)) return;
  log::app().error("{}: {}", message, describe(e));
}

// --- sleep -------------------------------------------------------------------------

/// A sleep's timer callback. Dropped unfired, it is the loop closing: the
/// Future's cancel handler (which names the loop) must then never run.
class SleepTimer {
 public:
  explicit SleepTimer(Future<void> future) noexcept : future_(std::move(future)) {}
  SleepTimer(SleepTimer&&) noexcept = default;
  SleepTimer& operator=(SleepTimer&&) = delete;
  ~SleepTimer() {
    if (future_.valid() && !future_.done()) future_.clear_cancel_handler();
  }
  void operator()() {
    if (!future_.done()) future_.set_result();
  }

 private:
  Future<void> future_;
};

// --- child links ---------------------------------------------------------------------

/// The done callback a ChildObserver leaves on each child. It owns a
/// reference to the observer; if the child's state dies (or the loop drops
/// a deferred run of the callback) before reporting, the observer hears
/// that the child is lost.
class ChildLink {
 public:
  ChildLink(std::shared_ptr<ChildObserver> observer, std::size_t index) noexcept
      : observer_(std::move(observer)), index_(index) {}
  ChildLink(ChildLink&&) noexcept = default;
  ChildLink& operator=(ChildLink&&) = delete;
  ~ChildLink() {
    if (observer_) observer_->child_lost(index_);
  }
  void operator()(FutureStateBase& child) {
    // The local reference keeps the observer alive while it reacts (which
    // may resume coroutines that drop every other reference).
    std::shared_ptr<ChildObserver> observer = std::move(observer_);
    observer->child_done(index_, child);
  }

 private:
  std::shared_ptr<ChildObserver> observer_;
  std::size_t index_;
};

// --- multi -----------------------------------------------------------------------------

class VoidMulti final : public detail::MultiCore {
 public:
  using MultiCore::MultiCore;

 private:
  void store(std::size_t, FutureStateBase&) override {}
  void deliver(FutureStateBase& out) override { static_cast<detail::FutureState<void>&>(out).set_result(); }
};

// --- with_timeout ------------------------------------------------------------------------

/// One with_timeout(): mirrors the inner future into the output, or fails the
/// output with TimeoutError when the timer fires first.
///
/// References: the output's cancel handler holds a raw pointer (cleared in
/// the destructor); the timer callback and the inner future's ChildLink
/// hold the core; the core holds the output and, while it is pending, the
/// inner future by raw pointer. So the core dies once the timer is gone and
/// the inner future has reported (or died), and no cycle exists.
class TimeoutCore final : public ChildObserver {
 public:
  TimeoutCore(FutureStateBase& out, detail::TransferFn transfer, ExceptionFilter quiet, bool cancel_on_timeout)
      : loop_(&IOLoop::current()),
        out_(StateRef<FutureStateBase>::share(&out)),
        transfer_(transfer),
        quiet_(std::move(quiet)),
        cancel_on_timeout_(cancel_on_timeout) {}
  ~TimeoutCore() override { out_->clear_cancel_handler(); }

  void start(FutureStateBase& inner, TimePoint deadline);
  void child_done(std::size_t, FutureStateBase& inner) override;
  void child_lost(std::size_t) noexcept override { inner_ = nullptr; }
  void expire();
  /// The timer callback was destroyed (fired, removed, or the loop closed).
  void timer_gone() noexcept { timer_ = {}; }

 private:
  void cancel_from_outer();
  void remove_timer() noexcept {
    if (timer_.valid()) loop_->remove_timeout(std::exchange(timer_, {}));
  }

  IOLoop* loop_;
  StateRef<FutureStateBase> out_;
  FutureStateBase* inner_ = nullptr;  // while it is pending
  TimeoutHandle timer_;
  detail::TransferFn transfer_;
  ExceptionFilter quiet_;
  bool cancel_on_timeout_;
  bool expired_ = false;
  bool cancelling_ = false;  // the output's cancel handler is running
};

/// The timer callback of a TimeoutCore.
class TimeoutTimer {
 public:
  explicit TimeoutTimer(std::shared_ptr<TimeoutCore> core) noexcept : core_(std::move(core)) {}
  TimeoutTimer(TimeoutTimer&&) noexcept = default;
  TimeoutTimer& operator=(TimeoutTimer&&) = delete;
  ~TimeoutTimer() {
    // Unfired and dropped: removed, or the loop closed. Either way the
    // handle is stale and must not be removed later (the loop may be gone).
    if (core_) core_->timer_gone();
  }
  void operator()() {
    std::shared_ptr<TimeoutCore> core = std::move(core_);
    core->timer_gone();
    core->expire();
  }

 private:
  std::shared_ptr<TimeoutCore> core_;
};

void TimeoutCore::start(FutureStateBase& inner, TimePoint deadline) {
  // Raw `this`: the destructor clears the handler, and a done output never
  // calls it.
  out_->set_cancel_handler([this] { cancel_from_outer(); });
  inner_ = &inner;
  watch(0, inner);
  if (inner_ == nullptr) return;  // already done: mirrored at once, no timer
  timer_ = loop_->call_at(deadline, TimeoutTimer(std::static_pointer_cast<TimeoutCore>(shared_from_this())));
}

void TimeoutCore::child_done(std::size_t, FutureStateBase& inner) {
  inner_ = nullptr;
  remove_timer();
  if (cancelling_ || out_->done()) {
    log_abandoned_failure(inner, quiet_,
                          expired_ ? "Exception in Future after timeout"
                                   : "Exception in Future after with_timeout() was cancelled");
    return;
  }
  if (expired_) {
    // cancel_on_timeout: the work has stopped; its cancellation is our
    // timeout. Any other outcome (a value, another exception) is passed on,
    // as asyncio.timeout does.
    if (inner.cancelled() || is_cancelled_error(inner.exception())) {
      out_->set_exception(std::make_exception_ptr(TimeoutError("Timeout")));
      return;
    }
  }
  transfer_(inner, *out_);
}

void TimeoutCore::expire() {
  if (out_->done()) return;
  expired_ = true;
  if (cancel_on_timeout_ && inner_ != nullptr) {
    // child_done turns the resulting CancelledError into TimeoutError, once
    // the work has actually stopped.
    inner_->cancel();
    return;
  }
  out_->set_exception(std::make_exception_ptr(TimeoutError("Timeout")));
}

void TimeoutCore::cancel_from_outer() {
  std::shared_ptr<ChildObserver> keep = shared_from_this();
  // The inner future's CancelledError must not be mirrored into the output:
  // the output is about to become cancelled itself.
  cancelling_ = true;
  remove_timer();
  if (inner_ != nullptr) inner_->cancel();
}

}  // namespace

// --- sleep and moment ---------------------------------------------------------------

Future<void> sleep(Duration delay) { return sleep_until(IOLoop::current().time() + delay); }

Future<void> sleep_until(TimePoint deadline) {
  IOLoop& loop = IOLoop::current();
  Future<void> future;
  TimeoutHandle timer = loop.call_at(deadline, SleepTimer(future));
  future.set_cancel_handler([&loop, timer] { loop.remove_timeout(timer); });
  return future;
}

Future<void> moment() {
  Future<void> future;
  IOLoop::current().add_callback([future]() mutable {
    if (!future.done()) future.set_result();  // done: it was cancelled
  });
  return future;
}

// --- multi --------------------------------------------------------------------------------

Future<void> multi(std::vector<Future<void>> children, MultiOptions options) {
  std::vector<FutureStateBase*> states;
  states.reserve(children.size());
  for (auto& f : children) states.push_back(detail::checked_state(f, "multi"));
  return detail::multi_void(states, std::move(options.quiet_exceptions));
}

Future<void> multi(std::initializer_list<Future<void>> children, MultiOptions options) {
  return multi(std::vector<Future<void>>(children), std::move(options));
}

namespace detail {

void ChildObserver::watch(std::size_t index, FutureStateBase& child) {
  child.add_callback(ChildLink(shared_from_this(), index));
}

MultiCore::MultiCore(std::size_t size, ExceptionFilter quiet, FutureStateBase& out)
    : children_(size, nullptr), pending_(size), quiet_(std::move(quiet)), out_(StateRef<FutureStateBase>::share(&out)) {
  // Raw `this`: the destructor clears the handler, and a done output never
  // calls it.
  out.set_cancel_handler([this] { cancel_children(); });
}

MultiCore::~MultiCore() { out_->clear_cancel_handler(); }

void MultiCore::add_child(std::size_t index, FutureStateBase& child) {
  children_[index] = &child;
  watch(index, child);
}

void MultiCore::start() { finish_if_complete(); }

void MultiCore::finish_if_complete() {
  // Every child reported and the output is still pending: they all succeeded
  // (the first failure completes the output).
  if (pending_ != 0 || out_->done()) return;
  try {
    deliver(*out_);
  } catch (...) {
    if (!out_->done()) out_->set_exception(std::current_exception());
  }
}

void MultiCore::child_done(std::size_t index, FutureStateBase& child) {
  children_[index] = nullptr;
  --pending_;
  if (cancelling_ || out_->cancelled()) {
    log_abandoned_failure(child, quiet_, "Exception in Future after multi() was cancelled");
    return;
  }
  if (out_->done()) {
    log_abandoned_failure(child, quiet_, "Multiple exceptions in yield list");
    return;
  }
  if (child.status() != FutureStateBase::Status::kResult) {
    out_->set_exception(child.exception());
    return;
  }
  try {
    store(index, child);
  } catch (...) {
    out_->set_exception(std::current_exception());
    return;
  }
  finish_if_complete();
}

void MultiCore::child_lost(std::size_t index) noexcept { children_[index] = nullptr; }

void MultiCore::cancel_children() {
  std::shared_ptr<ChildObserver> keep = shared_from_this();
  // Children cancelled here report CancelledError; that must not fail the
  // output, which becomes cancelled when this handler returns.
  cancelling_ = true;
  // By index: cancelling one child can finish or destroy others.
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (FutureStateBase* child = children_[i]) child->cancel();
  }
}

Future<void> multi_void(std::span<FutureStateBase* const> children, ExceptionFilter quiet) {
  Future<void> out;
  auto core = std::make_shared<VoidMulti>(children.size(), std::move(quiet), *out.state());
  start_multi(*core, children);
  return out;
}

// --- with_timeout -------------------------------------------------------------------------------

void start_with_timeout(FutureStateBase& out, FutureStateBase& inner, TimePoint deadline, TransferFn transfer,
                        ExceptionFilter quiet, bool cancel_on_timeout) {
  auto core = std::make_shared<TimeoutCore>(out, transfer, std::move(quiet), cancel_on_timeout);
  core->start(inner, deadline);
}

TimePoint deadline_after(Duration timeout) { return IOLoop::current().time() + timeout; }

// --- WaitIterator -------------------------------------------------------------------------------

void WaitCore::arm(FutureStateBase& next) {
  if (done()) throw InvalidStateError("WaitIterator::next: every future was already handed out");
  if (waiting_ && !waiting_->done()) throw InvalidStateError("WaitIterator::next: the previous next() is still pending");
  waiting_ = StateRef<FutureStateBase>::share(&next);
  deliver();
  abandon_if_hopeless();
}

std::size_t WaitCore::current_index() const {
  if (!current_) throw InvalidStateError("WaitIterator: next() has not produced a result yet");
  return current_index_;
}

FutureStateBase* WaitCore::current_state() const {
  if (!current_) throw InvalidStateError("WaitIterator: next() has not produced a result yet");
  return current_.get();
}

void WaitCore::child_done(std::size_t index, FutureStateBase& child) {
  --alive_;
  finished_.push_back(Finished{index, StateRef<FutureStateBase>::share(&child)});
  deliver();
}

void WaitCore::child_lost(std::size_t) noexcept {
  --alive_;
  abandon_if_hopeless();
}

void WaitCore::deliver() {
  if (!waiting_ || waiting_->done() || finished_head_ == finished_.size()) return;
  Finished next = std::move(finished_[finished_head_++]);
  if (finished_head_ == finished_.size()) {
    finished_.clear();
    finished_head_ = 0;
  }
  current_index_ = next.index;
  current_ = next.state;
  StateRef<FutureStateBase> child = std::move(next.state);
  ++returned_;
  // Local references: resolving `target` may resume a coroutine that calls
  // next() again and replaces current_ and waiting_ before this returns.
  StateRef<FutureStateBase> target = std::move(waiting_);
  transfer_(*child, *target);
}

void WaitCore::abandon_if_hopeless() noexcept {
  if (alive_ != 0 || finished_head_ != finished_.size() || !waiting_ || waiting_->done()) return;
  // Nothing can ever resolve the waiting Future: let it go, so a coroutine
  // suspended on it is freed rather than leaked (future_state.hpp's rule).
  StateRef<FutureStateBase> dead = std::move(waiting_);
}

// --- callbacks ------------------------------------------------------------------------------------

void task_threw(FutureStateBase& future, std::exception_ptr e) noexcept {
  if (!future.done()) {
    future.set_exception(std::move(e));
    return;
  }
  log::app().error("Exception in callback-style function after it called its callback: {}", describe(e));
}

}  // namespace detail

}  // namespace squall
