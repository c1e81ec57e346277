#include "core/timer_queue.hpp"

#include <algorithm>

namespace squall {

TimeoutHandle TimerQueue::add(TimePoint when, Callback&& cb) {
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.cb = std::move(cb);
  heap_.push_back(Entry{when, next_seq_++, slot, s.generation});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  ++live_;
  return TimeoutHandle{slot, s.generation};
}

void TimerQueue::free_slot(std::uint32_t slot) noexcept {
  ++slots_[slot].generation;  // every handle and heap entry naming it goes stale
  free_slots_.push_back(slot);
  --live_;
}

void TimerQueue::remove(TimeoutHandle handle) noexcept {
  if (handle.slot >= slots_.size() || slots_[handle.slot].generation != handle.generation) return;
  // Move the callback out before destroying it: its destructor may re-enter
  // (remove or add timers).
  Callback dead = std::move(slots_[handle.slot].cb);
  free_slot(handle.slot);
  // The common case, a timeout cancelled before any later timer was armed:
  // its entry is still the heap's last leaf (a later deadline than all its
  // ancestors does not sift up), and dropping the last leaf keeps the heap.
  // Then nothing goes stale and no rebuild is ever needed.
  if (heap_.back().slot == handle.slot && heap_.back().generation == handle.generation) {
    heap_.pop_back();
    return;
  }
  maybe_rebuild();
}

void TimerQueue::maybe_rebuild() {
  std::size_t stale = heap_.size() - live_;
  if (stale < kMinRebuild || stale <= live_) return;
  std::erase_if(heap_, [this](const Entry& e) { return !is_live(e); });
  std::make_heap(heap_.begin(), heap_.end(), Later{});
}

void TimerQueue::drop_stale_top() noexcept {
  while (!heap_.empty() && !is_live(heap_.front())) {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();
  }
}

bool TimerQueue::next_deadline(TimePoint& out) noexcept {
  drop_stale_top();
  if (heap_.empty()) return false;
  out = heap_.front().when;
  return true;
}

void TimerQueue::pop_due(TimePoint now, std::vector<Callback>& out) {
  for (;;) {
    drop_stale_top();
    if (heap_.empty() || heap_.front().when > now) return;
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    std::uint32_t slot = heap_.back().slot;
    heap_.pop_back();
    out.push_back(std::move(slots_[slot].cb));
    free_slot(slot);
  }
}

void TimerQueue::clear() noexcept {
  // Destroying a callback can free a coroutine that then adds or removes
  // timers; loop until nothing is left.
  while (live_ > 0) {
    std::vector<Callback> dead;
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].cb) {
        dead.push_back(std::move(slots_[i].cb));
        free_slot(i);
      }
    }
    heap_.clear();
    if (dead.empty()) break;
    dead.clear();
  }
  heap_.clear();
}

}  // namespace squall
