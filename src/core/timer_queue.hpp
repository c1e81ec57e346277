// TimerQueue: the loop's timers. A binary heap of (deadline, sequence) entries
// over a slab of callbacks. Removal is O(1) and lazy: the slab slot is freed
// and its generation bumped, the heap entry goes stale and is skipped when it
// surfaces; the heap is rebuilt when stale entries outnumber live ones.
// Owned by one IOLoop; loop thread only.
#pragma once

#include <cstdint>
#include <vector>

#include "squall/core/callback.hpp"
#include "squall/core/clock.hpp"
#include "squall/core/ioloop.hpp"

namespace squall {

class TimerQueue {
 public:
  TimeoutHandle add(TimePoint when, Callback&& cb);
  void remove(TimeoutHandle handle) noexcept;

  /// The earliest live deadline, if any.
  bool next_deadline(TimePoint& out) noexcept;

  /// Moves the callbacks of every timer due at `now` into `out`, in deadline
  /// then insertion order.
  void pop_due(TimePoint now, std::vector<Callback>& out);

  std::size_t live() const noexcept { return live_; }

  /// Destroys every pending callback (loop close). Callbacks destroyed here
  /// may schedule or remove timers; those are handled too.
  void clear() noexcept;

 private:
  struct Entry {
    TimePoint when;
    std::uint64_t seq;
    std::uint32_t slot;
    std::uint32_t generation;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const noexcept {
      return a.when != b.when ? a.when > b.when : a.seq > b.seq;
    }
  };
  struct Slot {
    Callback cb;
    std::uint32_t generation = 0;
  };

  bool is_live(const Entry& e) const noexcept { return slots_[e.slot].generation == e.generation; }
  void free_slot(std::uint32_t slot) noexcept;
  void drop_stale_top() noexcept;
  void maybe_rebuild();

  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_seq_ = 0;
  std::size_t live_ = 0;
  static constexpr std::size_t kMinRebuild = 256;
};

}  // namespace squall
