// The one main() for the benchmark executables: each benchmark source file
// only registers its benchmarks, so the squall side and the peer sides can be
// linked into one binary and reported in one JSON file.

#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
