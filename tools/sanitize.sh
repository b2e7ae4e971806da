#!/bin/sh
# tools/sanitize.sh [--quick] [build dir] [spec files...]
#
# Builds libslayer with AddressSanitizer and UndefinedBehaviorSanitizer
# (float-to-integer overflow included) into build-asan/ (or the directory
# given) and runs the test suite against it: the C tests, the GPU specs on
# the host emulator and the busted specs.  Any out-of-bounds access, use of
# a freed or cached block (the caching allocator marks its slack and its
# cached blocks as poisoned under ASan, csrc/tensor.c), or undefined
# behaviour stops the run with a report.  Spec files after the build
# directory run only those (without the emulated GPU run).
#
# The emulator (tests/cudaemu: the CUDA kernels compiled for the host) is
# built with UBSan only: it switches stacks between its fibers, which ASan
# does not follow.  Emulated device memory has its own checks (guard pages,
# canaries in the allocator's slack).  About 17 minutes on 2 cores, 13 of
# it the emulated GPU specs; not part of `make test`.
#
# --quick leaves the emulator out (neither built nor run): the C tests and
# every busted spec under ASan and UBSan, about 6 minutes with the build.
# CI runs it before the tests.  Its closing line names the sanitizers, so
# that the test command's plain "N passed, M failed" stays the only one.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
build=${1:-$root/build-asan}
[ $# -gt 0 ] && shift
emu=ON
if [ "$quick" = 1 ]; then
  emu=OFF
  [ $# -gt 0 ] || set -- "$root/tests"
fi
san="-fsanitize=address,undefined,float-cast-overflow"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLAYER_CUDA=OFF -DSLAYER_CUDA_EMU=$emu \
  -DCMAKE_C_FLAGS="$san -fno-omit-frame-pointer -fno-sanitize-recover=all" \
  -DCMAKE_CXX_FLAGS="-fsanitize=undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all" \
  -DCMAKE_SHARED_LINKER_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
cmake --build "$build" -j "$(nproc)"
# LuaJIT itself is not instrumented: the runtimes are preloaded.  Leaks are
# not reported: the caches live until exit by design.
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
SLAYER_SUMMARY_LABEL="under ASan and UBSan" SLAYER_BUILD="$build" SLAYER_LIB="$build/libslayer.so" \
  exec luajit "$root/tests/run.lua" "$@"
