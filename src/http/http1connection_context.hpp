// HTTP1ServerConnection::Context: what the connections of one server share.
// Private to src/http (http1connection.cpp and httpserver.cpp).
//
// - The parameters, once for all connections.
// - The open connections, as an intrusive list (a connection links itself in
//   its constructor and out in its destructor): HTTPServer walks it to close
//   them, and counts it.
// - The header deadlines, as an intrusive list sorted by deadline, with one
//   loop timer for its front (nginx keeps its timers in a tree embedded in
//   the connections for the same reason). With one header timeout for all,
//   a deadline armed now is the latest, so insertion at the tail is O(1);
//   removal is O(1). An idle connection thus costs three pointers here, not
//   a timer record and its callback.
// Loop-affine: one loop per context (the first that arms a deadline).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "squall/core/ioloop.hpp"
#include "squall/http/http1connection.hpp"

namespace squall::http {

class HTTP1ServerConnection::Context : public std::enable_shared_from_this<HTTP1ServerConnection::Context> {
 public:
  explicit Context(HTTP1ConnectionParameters p) : params(std::move(p)) {}
  ~Context() {
    if (timer_.valid() && loop_) loop_->remove_timeout(timer_);
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const HTTP1ConnectionParameters params;

  // --- the open connections -------------------------------------------------------
  std::size_t size() const noexcept { return count_; }
  /// The open connections, in the order they were made.
  std::vector<HTTP1ServerConnection*> connections() const {
    std::vector<HTTP1ServerConnection*> out;
    out.reserve(count_);
    for (HTTP1ServerConnection* c = first_; c; c = c->all_next_) out.push_back(c);
    return out;
  }
  void add(HTTP1ServerConnection* c) noexcept {
    c->all_prev_ = last_;
    c->all_next_ = nullptr;
    (last_ ? last_->all_next_ : first_) = c;
    last_ = c;
    ++count_;
  }
  void remove(HTTP1ServerConnection* c) noexcept {
    (c->all_prev_ ? c->all_prev_->all_next_ : first_) = c->all_next_;
    (c->all_next_ ? c->all_next_->all_prev_ : last_) = c->all_prev_;
    c->all_prev_ = c->all_next_ = nullptr;
    --count_;
  }

  // --- header deadlines ---------------------------------------------------------------
  /// Calls c->on_head_timeout() at `deadline` unless disarmed first.
  void arm(HTTP1ServerConnection* c, TimePoint deadline) {
    if (c->timer_linked_) {
      if (c->deadline_ == deadline) return;
      disarm(c);
    }
    c->deadline_ = deadline;
    HTTP1ServerConnection* after = timer_last_;
    while (after && after->deadline_ > deadline) after = after->timer_prev_;
    c->timer_prev_ = after;
    c->timer_next_ = after ? after->timer_next_ : timer_first_;
    (c->timer_next_ ? c->timer_next_->timer_prev_ : timer_last_) = c;
    (after ? after->timer_next_ : timer_first_) = c;
    c->timer_linked_ = true;
    if (!loop_) loop_ = &c->loop();
    // The timer stays on the earliest deadline it was set for; a disarmed
    // front costs one early wake-up, not a timer update per request.
    if (!timer_.valid() || deadline < timer_at_) schedule(deadline);
  }
  void disarm(HTTP1ServerConnection* c) noexcept {
    if (!c->timer_linked_) return;
    (c->timer_prev_ ? c->timer_prev_->timer_next_ : timer_first_) = c->timer_next_;
    (c->timer_next_ ? c->timer_next_->timer_prev_ : timer_last_) = c->timer_prev_;
    c->timer_prev_ = c->timer_next_ = nullptr;
    c->timer_linked_ = false;
  }

 private:
  void schedule(TimePoint when) {
    if (timer_.valid()) loop_->remove_timeout(timer_);
    timer_at_ = when;
    timer_ = loop_->call_at(when, [this] {
      timer_ = {};
      expire();
    });
  }
  void expire() {
    // A connection closed here may drop the last other reference to us.
    std::shared_ptr<Context> keep = shared_from_this();
    TimePoint now = loop_->time();
    while (timer_first_ && timer_first_->deadline_ <= now) {
      HTTP1ServerConnection* c = timer_first_;
      disarm(c);
      c->on_head_timeout();
    }
    // Deadlines armed meanwhile may have set the timer, not necessarily for
    // the front.
    if (timer_first_ && (!timer_.valid() || timer_first_->deadline_ < timer_at_)) schedule(timer_first_->deadline_);
  }

  HTTP1ServerConnection* first_ = nullptr;
  HTTP1ServerConnection* last_ = nullptr;
  std::size_t count_ = 0;
  HTTP1ServerConnection* timer_first_ = nullptr;
  HTTP1ServerConnection* timer_last_ = nullptr;
  IOLoop* loop_ = nullptr;
  TimeoutHandle timer_{};
  TimePoint timer_at_{};
};

}  // namespace squall::http
