# The front door: `make demo`, `make test`, `make bench`.
.PHONY: all deps demo test test-debug test-tsan bench configure-release build-release clean

all: test

deps:
	@scripts/setup-deps

configure-release: deps
	@cmake --preset release >/dev/null

build-release: configure-release
	@cmake --build --preset release

# Only the demo's target: the demo should not wait for the benchmarks to build.
demo: configure-release
	@cmake --build --preset release --target demo
	./build/release/examples/demo

test-debug: deps
	@cmake --preset debug >/dev/null
	@cmake --build --preset debug
	ctest --preset debug

# ThreadSanitizer runs only the tests labelled threads, so build only those.
# Finding no such test is an error, not a silent pass.
test-tsan: deps
	@cmake --preset tsan -DSQUALL_TESTS_THREADS_ONLY=ON >/dev/null
	@cmake --build --preset tsan
	ctest --preset tsan --no-tests=error

test: test-debug test-tsan

bench: build-release
	bench/run-all

clean:
	rm -rf build
