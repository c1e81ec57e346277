// Test inputs placed at the very end of a heap block, so a parser that reads
// one byte past its input trips AddressSanitizer (picohttpparser's habit of
// testing against a guard page).
#pragma once

#include <cstring>
#include <memory>
#include <string_view>

namespace squall::testing {

/// A heap copy of `text` with nothing after it: an overread trips ASan.
struct Exact {
  explicit Exact(std::string_view text) : data(std::make_unique<char[]>(text.size() + 1)), size(text.size()) {
    std::memcpy(data.get() + 1, text.data(), text.size());
  }
  std::string_view view() const { return {data.get() + 1, size}; }
  std::unique_ptr<char[]> data;
  std::size_t size;
};

}  // namespace squall::testing
