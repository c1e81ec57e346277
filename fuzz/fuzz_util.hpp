// Shared helpers of the fuzz targets: a check that aborts (so libFuzzer
// records the input) when an invariant fails.
#pragma once

#include <cstdio>
#include <cstdlib>

#define SQUALL_FUZZ_CHECK(cond)                                                     \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                \
    }                                                                              \
  } while (0)
