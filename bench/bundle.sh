#!/bin/sh
# bench/bundle.sh -- gather into .bundle/ (git-ignored) everything the GPU
# machine lacks, for bench/device.sh to run there: that machine has the CUDA
# driver, toolkit and cuBLAS, but no LuaJIT, OpenBLAS, libyaml, busted or
# network.
#
#   sh bench/bundle.sh [build-dir]        (default: build-d, else build)
#
# .bundle/
#   bin/luajit              the interpreter (links only libc, libm, libgcc_s)
#   lib/                    OpenBLAS (the pthread build Debian uses) and its
#                           libgfortran/libquadmath, libgomp, libyaml, zlib
#   lib-fallback/           libstdc++ and libgcc_s, used only when the
#                           machine's own are missing (device.sh checks ldd)
#   lua/, clib/             busted and its Lua modules (penlight, luassert,
#                           say, cliargs, mediator, term, system, dkjson) and
#                           their C parts (lfs, term.core, system.core)
#   build/                  libslayer.so, libslayer_cuda.so and the C tests
#                           built here (glibc >= 2.34 needed there)
#   include/, lib/*.so      headers and link names, for rebuilding there
#   reference/src/          the reference's package (slayerPytorch's src/),
#                           only when SLAYER_REFERENCE names its checkout: for
#                           bench/reference_gpu.py there; never committed
#   data/                   the first N-MNIST samples and the Oxford files of
#                           ../shared/data, for tests/examples_cuda_spec.lua
#   env.sh                  PATH, LD_LIBRARY_PATH, LUA_PATH, LUA_CPATH,
#                           SLAYER_LIB, SLAYER_BUILD (set BUNDLE first)
# It ends by checking, with ldd and LuaJIT run from a copy in /tmp under a
# clean environment, that nothing resolves outside the bundle but the C
# library itself and cuBLAS/the driver.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-}
if [ -z "$BUILD" ]; then
  if [ -f "$ROOT/build-d/libslayer_cuda.so" ]; then BUILD=$ROOT/build-d; else BUILD=$ROOT/build; fi
fi
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUTDIR=$ROOT/.bundle
ARCH=x86_64-linux-gnu
SYSLIB=/usr/lib/$ARCH
LUASHARE=/usr/share/lua/5.1
LUALIB=$SYSLIB/lua/5.1

[ -f "$BUILD/libslayer.so" ] || { echo "bundle: no $BUILD/libslayer.so; build first" >&2; exit 1; }
[ -f "$BUILD/libslayer_cuda.so" ] || echo "bundle: warning: no $BUILD/libslayer_cuda.so (configure with -DSLAYER_CUDA=ON)" >&2

rm -rf "$OUTDIR"
mkdir -p "$OUTDIR/bin" "$OUTDIR/lib" "$OUTDIR/lib-fallback" "$OUTDIR/lua" "$OUTDIR/clib" "$OUTDIR/build/tests/c" \
         "$OUTDIR/include"

# copy a library under the name the loader asks for (its soname)
lib() { cp -L "$1" "$OUTDIR/$2/$(basename "$1")"; }

cp -L "$(command -v luajit)" "$OUTDIR/bin/luajit"
lib "$SYSLIB/libopenblas.so.0" lib           # -> openblas-pthread/libopenblasp-r0.3.x.so
lib "$SYSLIB/libgfortran.so.5" lib
lib "$SYSLIB/libquadmath.so.0" lib
lib "$SYSLIB/libgomp.so.1" lib
lib "$SYSLIB/libyaml-0.so.2" lib
lib "$SYSLIB/libz.so.1" lib
lib "$SYSLIB/libstdc++.so.6" lib-fallback
lib "$SYSLIB/libgcc_s.so.1" lib-fallback
# link names and headers, for a rebuild on that machine
ln -s libopenblas.so.0 "$OUTDIR/lib/libopenblas.so"
ln -s libyaml-0.so.2 "$OUTDIR/lib/libyaml.so"
ln -s libz.so.1 "$OUTDIR/lib/libz.so"
cp -L /usr/include/$ARCH/openblas-pthread/cblas.h /usr/include/$ARCH/openblas-pthread/openblas_config.h \
      /usr/include/yaml.h /usr/include/zlib.h /usr/include/zconf.h "$OUTDIR/include/"

# busted and its pure-Lua dependencies, then their C modules
for m in busted busted.lua luassert say pl cliargs cliargs.lua mediator.lua term system dkjson.lua; do
  cp -RL "$LUASHARE/$m" "$OUTDIR/lua/"
done
cp -L "$LUALIB/lfs.so" "$OUTDIR/clib/lfs.so"
mkdir -p "$OUTDIR/clib/term" "$OUTDIR/clib/system"
cp -L "$LUALIB/term/core.so" "$OUTDIR/clib/term/core.so"
cp -L "$LUALIB/system/core.so" "$OUTDIR/clib/system/core.so"

# the libraries built here, and the C tests
cp -L "$BUILD/libslayer.so" "$OUTDIR/build/"
[ -f "$BUILD/libslayer_cuda.so" ] && cp -L "$BUILD/libslayer_cuda.so" "$OUTDIR/build/"
for t in "$BUILD"/tests/c/test_*; do
  case "$t" in *.*) ;; *) [ -x "$t" ] && cp "$t" "$OUTDIR/build/tests/c/" ;; esac
done

# a few samples of the shared data for the examples' GPU smoke tests
# (tests/examples_cuda_spec.lua): ../shared does not travel to the GPU
# machine, so device.sh points SLAYER_DATA here when it is absent there
DATA=${SLAYER_DATA:-$ROOT/../shared/data}
if [ -f "$DATA/nmnist-small/train1K.txt" ]; then
  mkdir -p "$OUTDIR/data/nmnist-small" "$OUTDIR/data/oxford"
  cp "$DATA/nmnist-small/train1K.txt" "$DATA/nmnist-small/test100.txt" "$OUTDIR/data/nmnist-small/"
  for spec in train1K.txt:48 test100.txt:24; do
    awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }' "$DATA/nmnist-small/${spec%%:*}" | head -n "${spec##*:}" |
      while read -r i; do cp "$DATA/nmnist-small/$i.bs2" "$OUTDIR/data/nmnist-small/"; done
  done
  cp "$DATA"/oxford/* "$OUTDIR/data/oxford/"
else
  echo "bundle: warning: no shared data at $DATA (set SLAYER_DATA): the examples' GPU tests will be skipped" >&2
fi

# the reference, for the side-by-side benchmark (bench/reference_gpu.py)
if [ -n "${SLAYER_REFERENCE:-}" ]; then
  if [ -f "$SLAYER_REFERENCE/src/cuda/slayerKernels.cu" ]; then
    mkdir -p "$OUTDIR/reference"
    cp -R "$SLAYER_REFERENCE/src" "$OUTDIR/reference/src"
  else
    echo "bundle: warning: SLAYER_REFERENCE=$SLAYER_REFERENCE has no src/cuda/slayerKernels.cu: no reference benchmark" >&2
  fi
fi

cat > "$OUTDIR/env.sh" <<'EOF'
# source with BUNDLE set to this folder
export PATH="$BUNDLE/bin:$PATH"
export LD_LIBRARY_PATH="$BUNDLE/build:$BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LUA_PATH="$BUNDLE/lua/?.lua;$BUNDLE/lua/?/init.lua"
export LUA_CPATH="$BUNDLE/clib/?.so"
export SLAYER_LIB="$BUNDLE/build/libslayer.so"
export SLAYER_BUILD="$BUNDLE/build"
EOF

echo "bundle: $(du -sh "$OUTDIR" | cut -f1) in $OUTDIR"

# ---- check it from a copy, with none of this machine's Lua or libraries ----
CHECK=$(mktemp -d /tmp/slayer-bundle-check.XXXXXX)
trap 'rm -rf "$CHECK"' EXIT
cp -R "$OUTDIR" "$CHECK/bundle"
mkdir -p "$CHECK/repo"
cp -R "$ROOT/lua" "$ROOT/tests" "$CHECK/repo/"
status=0
(
  BUNDLE=$CHECK/bundle
  . "$BUNDLE/env.sh"
  # everything but the C library, the loader and CUDA's own must resolve inside the bundle
  for f in "$BUNDLE/bin/luajit" "$BUNDLE/build/libslayer.so" "$BUNDLE"/lib/*.so.* "$BUNDLE"/clib/*.so "$BUNDLE"/clib/*/*.so; do
    ldd "$f" | awk -v f="$f" -v b="$BUNDLE" '
      /not found/ { print "bundle: " f ": " $1 " not found"; bad = 1 }
      / => \// && index($3, b) != 1 && $1 !~ /^(libc|libm|libdl|librt|libpthread|ld-linux|libgcc_s|libstdc\+\+)\./ {
        print "bundle: " f ": " $1 " resolves outside the bundle (" $3 ")"; bad = 1 }
      END { exit bad }' || exit 1
  done
  cd "$CHECK/repo"
  env -i PATH="$PATH" LD_LIBRARY_PATH="$LD_LIBRARY_PATH" LUA_PATH="$LUA_PATH" LUA_CPATH="$LUA_CPATH" \
      SLAYER_LIB="$SLAYER_LIB" SLAYER_BUILD="$SLAYER_BUILD" \
      luajit tests/run.lua tests/cuda_spec.lua > "$CHECK/spec.log" 2>&1 || { cat "$CHECK/spec.log"; exit 1; }
  tail -1 "$CHECK/spec.log" | sed 's/^/bundle: check run of tests\/cuda_spec.lua from the copy: /'
) || status=1
[ $status -eq 0 ] && echo "bundle: ldd and a test run from a copy in /tmp resolve everything from the bundle"
exit $status
