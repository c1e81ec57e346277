#include "core/fd_table.hpp"

#include <stdexcept>

namespace squall {

FdTable::Entry& FdTable::add(int fd, std::uint32_t events, IOLoop::Handler handler) {
  if (fd < 0) throw std::invalid_argument("add_handler: negative fd");
  if (static_cast<std::size_t>(fd) >= entries_.size()) entries_.resize(static_cast<std::size_t>(fd) + 1);
  auto entry = std::make_unique<Entry>();
  entry->handler = std::move(handler);
  entry->events = events;
  entry->generation = next_generation_++;
  if (next_generation_ == 0) next_generation_ = 1;
  entries_[fd] = std::move(entry);
  return *entries_[fd];
}

void FdTable::remove(int fd) noexcept {
  Entry* e = find(fd);
  if (!e) return;
  if (dispatching_ > 0) {
    parked_.push_back(std::move(entries_[fd]));
  } else {
    auto dead = std::move(entries_[fd]);  // destroyed after the slot is clear
  }
}

void FdTable::end_dispatch() noexcept {
  if (--dispatching_ == 0 && !parked_.empty()) {
    auto dead = std::move(parked_);
  }
}

std::vector<int> FdTable::fds() const {
  std::vector<int> out;
  for (std::size_t fd = 0; fd < entries_.size(); ++fd) {
    if (entries_[fd]) out.push_back(static_cast<int>(fd));
  }
  return out;
}

void FdTable::clear() noexcept {
  auto dead = std::move(entries_);
  auto parked = std::move(parked_);
}

}  // namespace squall
