#!/bin/sh
# bench/device.sh -- the whole GPU check in one call, on the GPU machine:
# environment, (re)build if needed, the GPU specs, the GPU benchmarks, and a
# short table printed last.
#
# Here, first:   cmake -S . -B build-d -DSLAYER_CUDA=ON && cmake --build build-d -j2
#                sh bench/bundle.sh build-d
# There:         sh bench/device.sh [--rebuild] [--no-sanitize] [--quick] [--budget S]
#                (the device tool: carry [".bundle"], timeout_s 600)
#
# The machine there has the NVIDIA driver, the CUDA toolkit (nvcc, cuBLAS,
# compute-sanitizer) and cmake, but no LuaJIT, OpenBLAS, libyaml or busted,
# and no network: .bundle/ (bench/bundle.sh) brings those and the libraries
# built here.  They are used as they are unless --rebuild is given or they
# fail to load; then libslayer and libslayer_cuda are rebuilt there with cmake
# against the bundle's headers.  Logs go to $OUT when it is set.
#
# Steps, each with a time limit so the table always prints:
#   1. environment: bundle, cuBLAS location, ldd of every binary
#   2. tests/cuda_spec.lua (and the C tests): every op on both devices
#   3. bench/gpu.lua: foundation benchmarks and the W1/W2 training steps
#      and bench/gpu_layers.lua: W2's ops one by one at batch 64, and
#      Nsight Compute's time per kernel of one W2 step at batch 12 and 64
#      (bench/workloads.lua --profile, summed by bench/kernels.lua)
#   3b. the reference (slayerPytorch) on W1/W2 through bench/reference_gpu.py,
#      when the bundle holds its source (SLAYER_REFERENCE at bundling) and the
#      machine's python3 has PyTorch; its extension builds in the background
#      during step 2
#   4. the examples' GPU smoke tests (tests/examples_cuda_spec.lua, when present)
#   5. compute-sanitizer racecheck over the kernels that use shared memory, and
#      memcheck over tests/cuda_spec.lua (unless --no-sanitize or too little of
#      the budget is left)
# --budget S (default 540) is the seconds all steps may take together; the
# device call itself is cut at its timeout_s, so give it S + 60.
set -u
T0=$(date +%s)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUNDLE=$ROOT/.bundle
LOG=${OUT:-/tmp}/device
mkdir -p "$LOG"
REBUILD=0 SANITIZE=1 QUICK=0 BUDGET=540
while [ $# -gt 0 ]; do
  case "$1" in
    --rebuild) REBUILD=1 ;;
    --no-sanitize) SANITIZE=0 ;;
    --quick) QUICK=1 ;;
    --budget) shift; BUDGET=${1:-}
      case "$BUDGET" in ''|*[!0-9]*) echo "device.sh: --budget takes whole seconds" >&2; exit 2 ;; esac ;;
    *) echo "device.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
RESULTS=$LOG/results.txt
: > "$RESULTS"
result() { printf '%-34s %-8s %5ss  %s\n' "$1" "$2" "$3" "$4" >> "$RESULTS"; }
elapsed() { echo $(( $(date +%s) - T0 )); }
# a step's time limit: its own, or what is left of the budget (the device
# call itself is cut at its timeout_s), so the table still prints
# (at least 5 s: `timeout 0` would mean no limit at all)
limit() {
  left=$(( BUDGET - $(elapsed) ))
  [ "$left" -lt 5 ] && left=5
  [ "$1" -lt "$left" ] && echo "$1" || echo "$left"
}
# run with a limit; prints and keeps the output
run_step() { # name limit logfile command...
  name=$1 limit=$2 logf=$3
  shift 3
  s=$(date +%s)
  timeout "$limit" "$@" > "$logf" 2>&1
  rc=$?
  cat "$logf"
  STEP_TIME=$(( $(date +%s) - s ))
  return $rc
}

cd "$ROOT" || exit 1
echo "== device.sh in $ROOT"
[ -f "$BUNDLE/env.sh" ] || { echo "device.sh: no .bundle/ here: run bench/bundle.sh and carry .bundle"; exit 1; }
. "$BUNDLE/env.sh"
# the shared data does not travel: use the bundle's samples when it is absent
if [ -z "${SLAYER_DATA:-}" ] && [ ! -f ../shared/data/nmnist-small/train1K.txt ] && [ -d "$BUNDLE/data" ]; then
  export SLAYER_DATA=$BUNDLE/data
fi

# ---- 1. environment -----------------------------------------------------------
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$LOG/nvidia-smi.txt"
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
[ -n "$NVCC" ] && "$NVCC" --version | tail -2
# cuBLAS: the toolkit's, else the pip wheel's
CUDALIB=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib \
         $(ls -d /usr/local/cuda-*/targets/x86_64-linux/lib 2>/dev/null); do
  if [ -f "$d/libcublas.so.13" ]; then CUDALIB=$d; break; fi
done
if [ -z "$CUDALIB" ]; then
  CUDALIB=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null || true)
fi
[ -n "$CUDALIB" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$CUDALIB"
echo "cuBLAS from: ${CUDALIB:-the loader's search path}"

check_ldd() {
  missing=""
  for f in "$BUNDLE/bin/luajit" "$SLAYER_LIB" "$(dirname "$SLAYER_LIB")/libslayer_cuda.so"; do
    [ -f "$f" ] || continue
    m=$(ldd "$f" 2>&1 | awk '/not found/ {print $1}')
    [ -n "$m" ] && missing="$missing $(basename "$f"):$m"
  done
  echo "$missing"
}
MISSING=$(check_ldd)
if [ -n "$MISSING" ]; then
  echo "ldd: missing$MISSING; adding the bundle's fallback libstdc++/libgcc_s"
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$BUNDLE/lib-fallback"
  MISSING=$(check_ldd)
fi
ldd "$(dirname "$SLAYER_LIB")/libslayer_cuda.so" 2>&1 | sed 's/^/  /'
if [ -n "$MISSING" ]; then result "environment (ldd)" FAIL "$(elapsed)" "missing:$MISSING"
else result "environment (ldd)" ok "$(elapsed)" "all libraries resolve"; fi

probe() {
  luajit -e "package.path='$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;'..package.path
    local snn = require 'slayer'
    if not snn.cuda.isAvailable() then print('unavailable: ' .. snn.cuda.unavailableReason()) os.exit(1) end
    print('GPU: ' .. snn.cuda.deviceName())" 2>&1
}
PROBE=$(probe); PROBE_RC=$?
echo "$PROBE"
if [ $REBUILD -eq 1 ] || [ $PROBE_RC -ne 0 ]; then
  echo "== rebuilding libslayer and libslayer_cuda here"
  s=$(date +%s)
  B=/tmp/slayer-build-device
  rm -rf "$B"
  if cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DSLAYER_CUDA=ON -DSLAYER_CUDA_EMU=OFF \
       -DOPENBLAS_INCLUDE_DIR="$BUNDLE/include" -DOPENBLAS_LIBRARY="$BUNDLE/lib/libopenblas.so" \
       -DYAML_INCLUDE_DIR="$BUNDLE/include" -DYAML_LIBRARY="$BUNDLE/lib/libyaml.so" \
       -DZLIB_INCLUDE_DIR="$BUNDLE/include" -DZLIB_LIBRARY="$BUNDLE/lib/libz.so" \
       ${NVCC:+-DCMAKE_CUDA_COMPILER=$NVCC} > "$LOG/build.txt" 2>&1 &&
     cmake --build "$B" -j 16 >> "$LOG/build.txt" 2>&1; then
    export SLAYER_LIB=$B/libslayer.so SLAYER_BUILD=$B
    result "rebuild on the GPU machine" ok "$(( $(date +%s) - s ))" "$B"
  else
    tail -30 "$LOG/build.txt"
    result "rebuild on the GPU machine" FAIL "$(( $(date +%s) - s ))" "see build.txt"
  fi
  PROBE=$(probe); PROBE_RC=$?
  echo "$PROBE"
fi
if [ $PROBE_RC -ne 0 ]; then
  result "CUDA back end" FAIL "$(elapsed)" "$PROBE"
else
  result "CUDA back end" ok "$(elapsed)" "$PROBE"
fi

# the reference's extension compiles on the CPUs while the specs run
REF_SRC=$BUNDLE/reference/src REF_BUILD=/tmp/slayer-reference-build REF_PID=""
if [ -f "$REF_SRC/cuda/slayerKernels.cu" ] && python3 -c 'import torch' 2>/dev/null; then
  timeout "$(limit 300)" python3 bench/reference_gpu.py "$REF_SRC" "$REF_BUILD" --build-only > "$LOG/reference_build.txt" 2>&1 &
  REF_PID=$!
fi

# ---- 2. GPU specs -------------------------------------------------------------
echo "== tests/cuda_spec.lua"
run_step spec "$(limit 240)" "$LOG/cuda_spec.txt" luajit tests/run.lua tests/cuda_spec.lua
rc=$?
status=$([ $rc -eq 0 ] && echo ok || echo FAIL); grep -q "CUDA not available" "$LOG/cuda_spec.txt" && [ $rc -eq 0 ] && status=SKIPPED
result "tests/cuda_spec.lua + C tests" "$status" "$STEP_TIME" \
  "$(grep -E '^[0-9]+ passed' "$LOG/cuda_spec.txt" | tail -1)"

# ---- 3. benchmarks ------------------------------------------------------------
echo "== bench/gpu.lua"
if [ $QUICK -eq 1 ]; then BARGS="--reps 5 --steps 5"; else BARGS="--reps 11 --steps 10"; fi
run_step bench "$(limit 240)" "$LOG/gpu_bench.txt" luajit bench/gpu.lua $BARGS
rc=$?
result "bench/gpu.lua" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$STEP_TIME" "table below"

# W2 op by op at batch 64: where its step goes
run_step layers "$(limit 90)" "$LOG/gpu_layers.txt" luajit bench/gpu_layers.lua --batch 64 --reps 5
rc=$?
result "bench/gpu_layers.lua (W2 by op)" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$STEP_TIME" "table below"

# W2's training step kernel by kernel: Nsight Compute's duration of each
# launch in one step (workloads.lua --profile; each kernel runs alone under
# the profiler, clocks left as they are), summed per kernel by kernels.lua
# (LuaJIT's JIT off, as under compute-sanitizer below: the host's speed does
# not count here)
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null || true)
for b in 12 64; do
  if [ -z "$NCU" ]; then result "ncu: W2 kernels, batch $b" skipped 0 "ncu not installed"; continue; fi
  echo "== ncu: W2's kernels at batch $b"
  run_step kernels "$(limit 60)" "$LOG/ncu_w2_b$b.txt" "$NCU" --profile-from-start off --clock-control none \
    --print-kernel-base function --print-units base --metrics gpu__time_duration.sum --csv \
    --log-file "$LOG/ncu_w2_b$b.csv" \
    luajit -joff bench/workloads.lua --device cuda --only W2 --batch $b --steps 1 --warmup 3 --profile
  rc=$?
  # (the CSV is in the log file; should this ncu print it with the program's
  # output instead, it is read from there)
  luajit bench/kernels.lua "$LOG/ncu_w2_b$b.csv" --top 15 > "$LOG/kernels_w2_b$b.txt" 2>&1 ||
    luajit bench/kernels.lua "$LOG/ncu_w2_b$b.txt" --top 15 > "$LOG/kernels_w2_b$b.txt" 2>&1 || rc=1
  result "ncu: W2 kernels, batch $b" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$STEP_TIME" \
    "$(head -1 "$LOG/kernels_w2_b$b.txt" | cut -c1-90)"
done

# ---- 3b. the reference on the same workloads ---------------------------------
if [ -n "$REF_PID" ]; then
  echo "== bench/reference_gpu.py (slayerPytorch)"
  wait "$REF_PID"; rc=$?
  tail -20 "$LOG/reference_build.txt"
  if [ $rc -ne 0 ]; then
    result "reference build" FAIL "$(elapsed)" "see reference_build.txt"
  else
    run_step reference "$(limit 150)" "$LOG/reference_bench.txt" python3 bench/reference_gpu.py "$REF_SRC" "$REF_BUILD"
    rc=$?
    result "reference (slayerPytorch) W1/W2" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$STEP_TIME" "lines above the table"
  fi
else
  result "reference (slayerPytorch) W1/W2" skipped 0 "no .bundle/reference/src or no PyTorch"
fi

# ---- 4. examples on the GPU ---------------------------------------------------
if [ -f tests/examples_cuda_spec.lua ]; then
  echo "== tests/examples_cuda_spec.lua"
  run_step examples "$(limit 180)" "$LOG/examples.txt" luajit tests/run.lua tests/examples_cuda_spec.lua
  rc=$?
  status=$([ $rc -eq 0 ] && echo ok || echo FAIL)
  grep -qE "CUDA not available|shared data not found" "$LOG/examples.txt" && [ $rc -eq 0 ] && status=SKIPPED
  result "examples on the GPU" "$status" "$STEP_TIME" \
    "$(grep -E '^[0-9]+ passed' "$LOG/examples.txt" | tail -1)"
else
  result "examples on the GPU" skipped 0 "no tests/examples_cuda_spec.lua yet"
fi

# ---- 5. race checker and memory checker -------------------------------------------
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
# racecheck: shared-memory hazards in the kernels that stage time in shared
# memory (psp, spike, Loihi), the block reductions (delay gradient) and the
# direct conv kernels (on small geometries: the race checker is slow).
# LuaJIT runs with its JIT off (-joff) under the sanitizer: the tool's host
# backtraces unwind through JIT-compiled traces, which have no unwind tables,
# and the process aborts (seen on the H200: 4 of 4 runs of a 200-iteration
# loop aborted with the JIT on, 0 of 4 with it off; the specs also passed
# with --show-backtrace device).  The kernels run the same either way.
LEFT=$(( BUDGET - $(elapsed) ))
if [ $SANITIZE -eq 1 ] && [ -n "$CS" ] && [ $LEFT -gt 200 ]; then
  echo "== compute-sanitizer racecheck over the shared-memory kernels"
  run_step racecheck 90 "$LOG/racecheck.txt" \
    "$CS" --tool racecheck --error-exitcode 99 luajit -joff tests/run.lua \
      --filter='temporal filters' --filter='spike function' --filter='Loihi neurons' --filter='delays on the GPU' \
      --filter='staging in shared memory' \
      tests/cuda_spec.lua
  rc=$?
  result "compute-sanitizer racecheck" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$STEP_TIME" \
    "$(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY|^[0-9]+ passed' "$LOG/racecheck.txt" | tr '\n' ' ')"
else
  result "compute-sanitizer racecheck" skipped 0 "$([ -z "$CS" ] && echo 'not installed' || echo "off or ${LEFT}s left")"
fi
LEFT=$(( BUDGET - $(elapsed) ))
if [ $SANITIZE -eq 1 ] && [ -n "$CS" ] && [ $LEFT -gt 150 ]; then
  echo "== compute-sanitizer memcheck over tests/cuda_spec.lua"
  run_step sanitize $(( LEFT - 20 )) "$LOG/sanitizer.txt" \
    "$CS" --tool memcheck --error-exitcode 99 luajit -joff tests/run.lua tests/cuda_spec.lua
  rc=$?
  result "compute-sanitizer memcheck" "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "$STEP_TIME" \
    "$(grep -E 'ERROR SUMMARY|^[0-9]+ passed' "$LOG/sanitizer.txt" | tr '\n' ' ')"
else
  result "compute-sanitizer memcheck" skipped 0 "$([ -z "$CS" ] && echo 'not installed' || echo "off or ${LEFT}s left")"
fi

# ---- the table, last --------------------------------------------------------------
echo
# what the specs noted: bit-identity of the ops written to round as the CPU,
# spikes that differ at the threshold, the examples' losses on both devices
if grep -q 'note:' "$LOG/cuda_spec.txt" "$LOG/examples.txt" 2>/dev/null; then
  echo "notes from the GPU specs"
  grep -h 'note:' "$LOG/cuda_spec.txt" "$LOG/examples.txt" 2>/dev/null | sed 's/^ *note: /  /' | cut -c1-150
  echo
fi
cat "$LOG/gpu_layers.txt" 2>/dev/null
echo
for b in 12 64; do
  [ -f "$LOG/kernels_w2_b$b.txt" ] && { echo "W2, batch $b, kernel by kernel (ncu)"; cat "$LOG/kernels_w2_b$b.txt"; echo; }
done
sed -n '/^GPU benchmarks/,$p' "$LOG/gpu_bench.txt" 2>/dev/null
grep -h '^reference ' "$LOG/reference_bench.txt" 2>/dev/null
echo
echo "device.sh summary ($(elapsed) s in all)"
printf '%-34s %-8s %6s  %s\n' step status time detail
cat "$RESULTS"
# the device tool brings back at most 8 files: pack the logs into one
if [ -n "${OUT:-}" ] && [ -d "$LOG" ]; then
  tar -czf "$OUT/device-logs.tgz" -C "$(dirname "$LOG")" "$(basename "$LOG")" && rm -rf "$LOG"
fi
