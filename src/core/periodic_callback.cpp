#include "squall/core/periodic_callback.hpp"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <exception>
#include <optional>
#include <random>
#include <stdexcept>

#include "squall/core/errors.hpp"
#include "squall/core/ioloop.hpp"
#include "squall/core/log.hpp"

namespace squall {

namespace {

/// A uniform double in [0, 1). The generator is per thread because a
/// PeriodicCallback only ever runs on its loop's thread; seeding it once
/// keeps std::random_device (a syscall) off the per-run path.
double random_unit() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  // 53 random bits scaled by 2^-53: never 1.0, unlike some
  // uniform_real_distribution implementations (LWG 2524).
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

void log_failure(const std::exception_ptr& e) noexcept {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const CancelledError&) {
    // A cancelled run is not an error (Tornado catches only Exception, and
    // asyncio's CancelledError is not one).
  } catch (const std::exception& ex) {
    log::app().error("Exception in PeriodicCallback: {}", ex.what());
  } catch (...) {
    log::app().error("Exception in PeriodicCallback: unknown exception");
  }
}

}  // namespace

/// The schedule, shared with the timer and the run in flight so that neither
/// outlives what it points to. States: stopped (running_ false, no timer);
/// armed (running_, timeout_ valid); in a run (in_flight_, no timer). A
/// stop() and start() inside a run leaves running_ and in_flight_ both set:
/// the run's end arms the timer, so there is never more than one.
class PeriodicCallback::Core : public std::enable_shared_from_this<Core> {
 public:
  Core(Target target, Duration period, double jitter)
      : target_(std::move(target)), period_(period), jitter_(jitter) {}

  void start() {
    if (running_) return;
    loop_ = &IOLoop::current();
    running_ = true;
    next_ = loop_->time();
    schedule_next();
  }

  void stop() noexcept {
    running_ = false;
    if (timeout_.valid()) loop_->remove_timeout(std::exchange(timeout_, {}));
  }

  bool running() const noexcept { return running_; }
  Duration period() const noexcept { return period_; }
  double jitter() const noexcept { return jitter_; }

 private:
  class TimerTicket;
  class RunTicket;

  void schedule_next();
  void update_next(TimePoint now);
  void fire();
  void finish_run(const std::exception_ptr& error) {
    log_failure(error);
    in_flight_ = false;
    schedule_next();
  }
  /// The loop destroyed our timer or our run's continuation without calling
  /// it: it is closing (or the run was abandoned and can never finish).
  /// Nothing will run again, and the loop must not be touched any more.
  void timer_dropped(std::uint64_t seq) noexcept {
    if (seq != timer_seq_ || !timeout_.valid()) return;  // stop() removed it
    timeout_ = {};
    running_ = false;
  }
  void run_dropped() noexcept {
    in_flight_ = false;
    running_ = false;
  }

  Target target_;
  Duration period_;
  double jitter_;
  IOLoop* loop_ = nullptr;
  TimePoint next_{};
  TimeoutHandle timeout_{};
  std::uint64_t timer_seq_ = 0;  // names the timer armed last
  bool running_ = false;
  bool in_flight_ = false;
};

/// Lives inside the loop's timer: keeps the Core alive while armed, and
/// reports a timer the loop drops unrun.
class PeriodicCallback::Core::TimerTicket {
 public:
  TimerTicket(std::shared_ptr<Core> core, std::uint64_t seq) noexcept : core_(std::move(core)), seq_(seq) {}
  TimerTicket(TimerTicket&&) noexcept = default;
  TimerTicket& operator=(TimerTicket&&) = delete;
  ~TimerTicket() {
    if (core_) core_->timer_dropped(seq_);
  }
  void operator()() {
    // Held for the whole run, so the callback may destroy its own
    // PeriodicCallback.
    std::shared_ptr<Core> core = std::move(core_);
    core->fire();
  }

 private:
  std::shared_ptr<Core> core_;
  std::uint64_t seq_;
};

/// The continuation of a run that returned a pending Future: keeps the
/// callback (and what a coroutine lambda captures) alive until it completes.
class PeriodicCallback::Core::RunTicket {
 public:
  explicit RunTicket(std::shared_ptr<Core> core) noexcept : core_(std::move(core)) {}
  RunTicket(RunTicket&&) noexcept = default;
  RunTicket& operator=(RunTicket&&) = delete;
  ~RunTicket() {
    if (core_) core_->run_dropped();
  }
  void operator()(Future<void> done) {
    std::shared_ptr<Core> core = std::move(core_);
    core->finish_run(done.exception());
  }

 private:
  std::shared_ptr<Core> core_;
};

void PeriodicCallback::Core::schedule_next() {
  if (!running_ || in_flight_) return;
  update_next(loop_->time());
  ++timer_seq_;
  timeout_ = loop_->call_at(next_, TimerTicket(shared_from_this(), timer_seq_));
}

// Tornado's PeriodicCallback._update_next.
void PeriodicCallback::Core::update_next(TimePoint now) {
  Duration period = period_;
  if (jitter_ > 0) {
    double factor = 1 + jitter_ * (random_unit() - 0.5);
    period = std::chrono::duration_cast<Duration>(
        std::chrono::duration<double, Duration::period>(static_cast<double>(period.count()) * factor));
    if (period <= Duration::zero()) period = Duration(1);
  }
  if (next_ <= now) {
    // Measured from the start of one run to the start of the next; after an
    // overrun, skip to the next tick of the original schedule rather than
    // running the missed ones back to back.
    next_ += ((now - next_) / period + 1) * period;
  } else {
    // The clock went backwards (not the steady clock, but a LoopClock may):
    // still move forward rather than recompute the same deadline.
    next_ += period;
  }
}

void PeriodicCallback::Core::fire() {
  timeout_ = {};
  if (!running_) return;
  in_flight_ = true;
  if (target_.plain) {
    std::exception_ptr error;
    try {
      target_.plain();
    } catch (...) {
      error = std::current_exception();
    }
    finish_run(error);
    return;
  }
  std::optional<Future<void>> run;
  try {
    run.emplace(target_.async());
  } catch (...) {
    finish_run(std::current_exception());
    return;
  }
  // Runs at once if the future is already done.
  run->add_done_callback(RunTicket(shared_from_this()));
}

// --- PeriodicCallback ---------------------------------------------------------------

PeriodicCallback::PeriodicCallback(Target target, Duration period, double jitter) {
  if (period <= Duration::zero()) throw std::invalid_argument("PeriodicCallback: the period must be positive");
  // Written so that NaN fails too.
  if (!(jitter >= 0 && jitter < 2)) throw std::invalid_argument("PeriodicCallback: jitter must be in [0, 2)");
  core_ = std::make_shared<Core>(std::move(target), period, jitter);
}

PeriodicCallback::~PeriodicCallback() {
  if (core_) core_->stop();
}

PeriodicCallback::PeriodicCallback(PeriodicCallback&&) noexcept = default;

PeriodicCallback& PeriodicCallback::operator=(PeriodicCallback&& other) noexcept {
  if (this != &other) {
    if (core_) core_->stop();
    core_ = std::move(other.core_);
  }
  return *this;
}

void PeriodicCallback::start() { core_->start(); }
void PeriodicCallback::stop() { core_->stop(); }
bool PeriodicCallback::is_running() const noexcept { return core_ && core_->running(); }
Duration PeriodicCallback::period() const noexcept { return core_->period(); }
double PeriodicCallback::jitter() const noexcept { return core_->jitter(); }

}  // namespace squall
