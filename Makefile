# The front door: `make demo`, `make test`, `make bench`.
.PHONY: all deps demo test test-debug test-tsan bench build-release clean

all: test

deps:
	@scripts/setup-deps

build-release: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release

demo: build-release
	./build/release/examples/demo

test-debug: deps
	@cmake --preset debug >/dev/null
	@cmake --build --preset debug
	ctest --preset debug

test-tsan: deps
	@cmake --preset tsan >/dev/null
	@cmake --build --preset tsan
	ctest --preset tsan

test: test-debug test-tsan

bench: build-release
	bench/run-all

clean:
	rm -rf build
