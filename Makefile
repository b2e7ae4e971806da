# slayer-lua: convenience targets around CMake and the test runner.
#   make deps    install missing Debian packages (root)
#   make build   configure and build libslayer (and the CUDA back end when nvcc is found)
#   make test    build, then run the C and busted tests (ends with "N passed, M failed")
#   make demo    build, then run the main job (examples/fashion-events)
#   make bench   build, then print the micro-benchmarks
#   make sanitize  the tests against an ASan + UBSan build (build-asan/; ~17 min)
#   make sanitize-quick  the same without the emulated GPU specs (~4 min; CI runs it)
BUILD ?= build
SLAYER_CUDA ?= AUTO
JOBS ?= 2
LUAJIT ?= luajit

.PHONY: deps build test demo bench sanitize sanitize-quick clean

deps:
	sh tools/install-deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DSLAYER_CUDA=$(SLAYER_CUDA)

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

test: build
	SLAYER_BUILD=$(CURDIR)/$(BUILD) SLAYER_LIB=$(CURDIR)/$(BUILD)/libslayer.so $(LUAJIT) tests/run.lua

demo: build
	SLAYER_LIB=$(CURDIR)/$(BUILD)/libslayer.so $(LUAJIT) examples/fashion-events/train.lua

bench: build
	SLAYER_LIB=$(CURDIR)/$(BUILD)/libslayer.so $(LUAJIT) bench/run.lua

sanitize:
	sh tools/sanitize.sh $(CURDIR)/build-asan

sanitize-quick:
	sh tools/sanitize.sh --quick $(CURDIR)/build-asan

clean:
	rm -rf $(BUILD) build-asan build.luarocks
