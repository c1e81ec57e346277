#include "core/fd_table.hpp"

#include <stdexcept>

namespace squall {

FdTable::Entry& FdTable::add(int fd, std::uint32_t events, IOLoop::Handler handler) {
  if (fd < 0) throw std::invalid_argument("add_handler: negative fd");
  std::size_t page = static_cast<std::size_t>(fd) / kPageSize;
  if (page >= pages_.size()) pages_.resize(page + 1);
  if (!pages_[page]) pages_[page] = std::make_unique<Page>();
  Entry& e = (*pages_[page])[static_cast<std::size_t>(fd) % kPageSize];
  e.handler = std::move(handler);
  e.events = events;
  e.generation = next_generation_++;
  if (next_generation_ == 0) next_generation_ = 1;
  return e;
}

void FdTable::remove(int fd) noexcept {
  Entry* e = find(fd);
  if (!e) return;
  e->generation = 0;
  e->events = 0;
  // Destroyed after the entry reads as free: the handler's destructor may
  // call back into the loop. A running handler is not here (it was taken
  // for its call), so this never destroys code that is executing.
  IOLoop::Handler dead = std::move(e->handler);
}

void FdTable::restore_after_dispatch(int fd, std::uint32_t generation, IOLoop::Handler& handler) noexcept {
  Entry* e = find(fd);
  if (e && e->generation == generation && !e->handler) {
    e->handler = std::move(handler);
    return;
  }
  handler = nullptr;  // removed (or replaced) while it ran
}

std::vector<int> FdTable::fds() const {
  std::vector<int> out;
  for (std::size_t p = 0; p < pages_.size(); ++p) {
    if (!pages_[p]) continue;
    for (std::size_t i = 0; i < kPageSize; ++i) {
      if ((*pages_[p])[i].generation != 0) out.push_back(static_cast<int>(p * kPageSize + i));
    }
  }
  return out;
}

void FdTable::clear() noexcept {
  auto dead = std::move(pages_);
  pages_.clear();
}

}  // namespace squall
