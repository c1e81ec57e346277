// Counts the calling thread's allocations while a test asks (-1: not
// counting), to prove fast paths allocate nothing. Replacing the global
// operator new is the one way to see every allocation, the library's
// included. Include from exactly one file of a test executable.
#pragma once

#include <cstdlib>
#include <new>

namespace {
constinit thread_local long tls_allocations = -1;
}
// GCC inlines these and then mistakes free() for a mismatch with new; they
// are a malloc/free pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (tls_allocations >= 0) ++tls_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
