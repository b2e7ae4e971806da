--[[
GPU benchmarks (run by bench/device.sh on the GPU machine).

    luajit bench/gpu.lua [--reps R] [--steps S] [--skip-ops] [--skip-workloads] [--small]

(SLAYER_GPU_BENCH_DEVICE=cpu runs it all on the CPU with --small sizes: a
check of this script on machines without a GPU, not a benchmark.)

Foundation level, medians over R repetitions, each timed between two
snn.cuda.synchronize() calls:
  - sgemm through a:matmul(b) at 1024^3 and 4096^3: GFLOP/s (float32, no TF32);
  - out = a + b on 64M-element operands: GB/s counting 3 x 256 MB moved;
  - device-to-device copy (t:clone()) of 256 MB: GB/s counting read + write;
  - t:sum() of 64M elements (two reduction passes and an 8-byte copy back);
  - host <-> device copies of 256 MB from and to ordinary (pageable) memory;
  - per-op cost of a small op (a + b on 4 elements) queued without waiting:
    the Lua + dispatch + launch overhead that decides small-batch speed;
    and the same op followed by a wait (the round trip);
  - one fused Adam step over 10M parameters.
The SNN ops at the workloads' sizes, each alone (where a training step's
time goes): psp and spike on W1's hidden layer at batch 128, W1's first
dense layer on 1.5% spikes (its weight gradient on the device's event
list) and on 10% spikes (cuBLAS), forward and forward + backward, the
forward + backward of a 10% input right after 1.5% ones (the weight
gradient's path follows the shape's previous input, so the event list
overflows and the kernel reads x itself), and W2's first conv and pool
at batch 64, and both paths of that dense layer forced (`sparse` true and
false) at batch 12 and 128 and 0.3 to 3% spikes, beside the default
(cuBLAS forward, the event list's weight gradient under 5%): where the
event list stops paying on this GPU.
Workloads (../shared/BENCHMARKS.md): W1 nmnist-mlp at batch 12 and 128, W2
nmnist-cnn at batch 12 and 64, each a full training step (forward, loss,
backward, Adam), and W4 (one dense n -> n spiking layer, batch 16, T = 500,
forward + backward) at n = 512, 4096 and 16384, through bench/workloads.lua
with --device cuda: median ms per step, the forward alone, and peak GPU
memory (live tensors, and live + cached blocks; when workloads.lua runs variants of a workload in one call,
each row shows the peak over all of them).  A workload whose layers have no
CUDA kernels yet is listed as pending with the missing function.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/bench/[^/]*$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path

local snn = require 'slayer'
local T = snn.tensor

local opts = snn.utils.options({...}, {
   reps = {11, 'timed repetitions (median reported)', integer = true, min = 1},
   steps = {10, 'timed steps per workload', integer = true, min = 1},
   ['skip-ops'] = {false, 'leave out the SNN op benchmarks (the foundation level always runs)'},
   ['skip-workloads'] = {false, 'leave out the workloads'},
   small = {false, 'small sizes (a check of the script, not a benchmark)'},
}, 'luajit bench/gpu.lua [options]')
opts.ops, opts.workloads = not opts['skip-ops'], not opts['skip-workloads']

-- the device and its runtime calls (the CPU stands in when asked to)
local DEV = os.getenv('SLAYER_GPU_BENCH_DEVICE') or 'cuda'
local gpu = snn.cuda
if DEV == 'cpu' then
   opts.small = true
   gpu = {
      synchronize = function() end, deviceName = function() return 'CPU standing in' end,
      deviceCount = function() return 0 end, emptyCache = function() end, resetPeakMemoryStats = function() end,
      memoryStats = function()
         local m = snn.memoryStats('cpu')
         m.peakReservedBytes = m.peakLiveBytes + m.cachedBytes
         return m
      end,
   }
elseif not snn.cuda.isAvailable() then
   print('gpu.lua: no usable GPU: ' .. tostring(snn.cuda.unavailableReason()))
   os.exit(2)
end
local sync = gpu.synchronize
local SCALE = opts.small and 1 / 64 or 1

-- median seconds of fn() between synchronisations, after one warm-up
local function time(fn, reps)
   return (snn.utils.timeit(function() fn(); sync() end, reps or opts.reps))
end

local rows = {}
local function row(name, value, unit, note)
   rows[#rows + 1] = {name, value, unit, note or ''}
   io.write(string.format('  %-40s %12s %-8s %s\n', name, type(value) == 'number' and string.format('%.2f', value) or value,
      unit, note or ''))
   io.flush()
end

print(string.format('GPU: %s (%d device(s)); slayer %s', gpu.deviceName(), gpu.deviceCount(), snn._VERSION))

snn.manualSeed(0)
for _, n in ipairs(opts.small and {256, 512} or {1024, 4096}) do
   local a, b = T.randn({n, n}, DEV), T.randn({n, n}, DEV)
   local s = time(function() return a:matmul(b) end)
   row('sgemm ' .. n .. '^3 (matmul)', 2 * n ^ 3 / s / 1e9, 'GFLOP/s', 'float32, no TF32')
end

do
   local n = 64 * 1024 * 1024 * SCALE
   local a, b = T.rand({n}, DEV), T.rand({n}, DEV)
   local bytes = n * 4
   local mb = string.format('%d MB', bytes / 2 ^ 20)
   local s = time(function() return a + b end)
   row('add, ' .. mb .. ' operands', 3 * bytes / s / 1e9, 'GB/s', 'read 2, write 1')
   s = time(function() return a:clone() end)
   row('copy ' .. mb .. ' on the device', 2 * bytes / s / 1e9, 'GB/s', 'read + write')
   s = time(function() return a:sum() end)
   row('sum of ' .. mb, bytes / s / 1e9, 'GB/s', 'two passes + copy back')
   local h = T.rand({n})
   s = time(function() return h:to(DEV) end, 5)
   row('host -> device, ' .. mb .. ' pageable', bytes / s / 1e9, 'GB/s')
   s = time(function() return a:cpu() end, 5)
   row('device -> host, ' .. mb .. ' pageable', bytes / s / 1e9, 'GB/s')
end

do
   local a, b = T.rand({4}, DEV), T.rand({4}, DEV)
   local k = opts.small and 2000 or 20000
   local s = time(function() for _ = 1, k do local _ = a + b end end, 5)
   row('small op (a + b, 4 elements), queued', s / k * 1e6, 'us/op', 'Lua + dispatch + launch')
   k = k / 10
   s = time(function() for _ = 1, k do local _ = a + b; sync() end end, 5)
   row('small op followed by a wait', s / k * 1e6, 'us/op')
end

do
   local n = 10 * 1000 * 1000 * SCALE
   local p = T.randn({n}, DEV):requiresGrad(true)
   p.grad = T.randn({n}, DEV)
   local opt = snn.optim.Adam({p}, {lr = 1e-3, amsgrad = true})
   local s = time(function() opt:step() end)
   row(string.format('Adam step, %.1fM parameters (amsgrad)', n / 1e6), s * 1e3, 'ms',
      string.format('%.0f GB/s (5 reads, 4 writes)', 9 * 4 * n / s / 1e9))
end

-- SNN ops at the workloads' sizes ------------------------------------------

if opts.ops and pcall(require, 'slayer.layer') then
   local sl = snn.layer({type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1,
      scaleRho = 1}, {Ts = 1, tSample = 300}):to(DEV)
   local B1, B2 = opts.small and 2 or 128, opts.small and 1 or 64
   snn.manualSeed(1)
   local u = T.randn({B1, 512, 1, 1, 300}, DEV) * 4 + 6
   local s = time(function() return sl:psp(u) end)
   row(string.format('psp [%d,512,1,1,300], K %d', B1, sl.srmKernel:numel()), s * 1e3, 'ms',
      string.format('%.0f GB/s (read + write)', 2 * 4 * u:numel() / s / 1e9))
   local uc = u:clone()
   s = time(function() uc:copy(u); return sl:spike(uc) end)
   row(string.format('spike [%d,512,1,1,300] + a copy', B1), s * 1e3, 'ms')
   local fc1 = sl:dense({34, 34, 2}, 512)
   fc1:to(DEV)
   local xs = {}
   local function forward(x) return snn.noGrad(function() return fc1(x) end) end
   for _, density in ipairs({0.015, 0.1}) do
      local x = T.bernoulli({B1, 2, 34, 34, 300}, density, DEV)
      xs[#xs + 1] = x
      local what = string.format('dense 2312->512 b%d %g%%', B1, density * 100)
      s = time(function() return forward(x) end)
      row(what .. ' forward', s * 1e3, 'ms', 'cuBLAS')
      s = time(function()
         fc1:zeroGrad()
         fc1(x):sum():backward()
      end)
      row(what .. ' fwd+bwd', s * 1e3, 'ms', density < 0.05 and 'weight gradient: events' or 'cuBLAS')
   end
   -- where the event list stops paying on this GPU: both paths forced, at
   -- W1's first layer, batch 12 and B1, over the densities of spike input;
   -- the row's value is the default choice's forward + backward
   local function fb(x)
      fc1:zeroGrad()
      fc1(x):sum():backward()
   end
   for _, nb in ipairs({12, B1}) do
      for _, density in ipairs(opts.small and {0.015} or {0.003, 0.006, 0.015, 0.03}) do
         local x = T.bernoulli({nb, 2, 34, 34, 300}, density, DEV)
         local f, b = {}, {}
         for k, sparse in ipairs({true, false}) do
            fc1.sparse = sparse
            f[k] = time(function() return forward(x) end) * 1e3
            b[k] = time(function() fb(x) end) * 1e3
         end
         fc1.sparse = 'auto'
         local auto = time(function() fb(x) end) * 1e3
         row(string.format('dense b%d %g%% fwd+bwd, default', nb, density * 100), auto, 'ms',
            string.format('events/cuBLAS forced: forward %.2f/%.2f, fwd+bwd %.2f/%.2f ms', f[1], f[2], b[1], b[2]))
      end
   end
   -- the weight gradient's path follows the previous input of the shape: a
   -- 10% input right after 1.5% ones overflows the event list, and the
   -- kernel reads x itself
   local jumps = {}
   for k = 1, opts.reps do
      fb(xs[1]); sync()
      local t0 = snn.utils.now()
      fb(xs[2]); sync()
      jumps[k] = snn.utils.now() - t0
   end
   row(string.format('dense b%d 10%% after 1.5%% fwd+bwd', B1), snn.utils.median(jumps) * 1e3, 'ms',
      'the list overflows: x read in place')
   local conv1, pool1 = sl:conv(2, 16, 5, 1, 1), sl:pool(2)
   conv1:to(DEV)
   pool1:to(DEV)
   local x2 = sl:psp(T.bernoulli({B2, 2, 34, 34, 300}, 0.015, DEV))
   s = time(function() return snn.noGrad(function() return conv1(x2) end) end)
   row(string.format('conv 2->16 k5 b%d forward', B2), s * 1e3, 'ms', 'direct kernel, no columns (was im2col + cuBLAS: 12.6 ms at b64)')
   s = time(function()
      conv1:zeroGrad()
      conv1(x2):sum():backward()
   end)
   row(string.format('conv 2->16 k5 b%d fwd+bwd', B2), s * 1e3, 'ms', 'weight gradient only')
   local y1 = snn.noGrad(function() return conv1(x2) end)
   s = time(function() return snn.noGrad(function() return pool1(y1) end) end)
   row(string.format('pool 2 [%d,16,32,32,300]', B2), s * 1e3, 'ms')
   u, uc, x2, y1 = nil, nil, nil, nil
   collectgarbage('collect')
end

-- workloads -----------------------------------------------------------------

local function workload(name, batch, n)
   local chunk = assert(loadfile(root .. '/bench/workloads.lua'))
   collectgarbage('collect')
   gpu.emptyCache()
   gpu.resetPeakMemoryStats()
   local base = gpu.memoryStats()
   local lines = {}
   local realPrint = print
   print = function(...)
      local parts = {}
      for k = 1, select('#', ...) do parts[k] = tostring((select(k, ...))) end
      lines[#lines + 1] = table.concat(parts, '\t')
   end
   local args = {'--device', DEV, '--only', name, '--batch', tostring(batch), '--steps',
      tostring(opts.small and 1 or opts.steps), '--n', tostring(n or 0)}
   if opts.small then args[#args + 1], args[#args + 2] = '--warmup', '1' end
   local ok, err = pcall(chunk, unpack(args))
   print = realPrint
   local label = ({W1 = 'W1 nmnist-mlp', W2 = 'W2 nmnist-cnn', W4 = 'W4 n=' .. tostring(n)})[name] .. ', batch ' .. batch
   if not ok then
      local missing = tostring(err):match('missing (sl_[%w_]+)')
      row(label, 'pending', '', missing and ('no CUDA kernel yet: ' .. missing) or tostring(err):sub(1, 120))
      return
   end
   -- one row per workload line (workloads.lua may run variants of W2)
   local mem = gpu.memoryStats()
   local memNote = string.format('peak GPU memory %.0f MB live, %.0f MB reserved',
      (mem.peakLiveBytes - base.liveBytes) / 2 ^ 20, mem.peakReservedBytes / 2 ^ 20)
   local found = false
   for _, l in ipairs(lines) do
      local wname, median, fwd = l:match('^(W%d.-)%s+%d+%s+([%d%.]+) ms.-([%d%.]+) ms%s*$')
      if wname then
         found = true
         row(wname .. ', batch ' .. batch, tonumber(median), 'ms/step',
            string.format('forward %.2f ms; %s', tonumber(fwd), memNote))
      end
   end
   if not found then row(label, 'n/a', '', 'no result line from bench/workloads.lua') end
end

if opts.workloads then
   if not pcall(require, 'slayer.layer') then
      row('W1/W2 workloads', 'pending', '', 'snn.layer is not available')
   else
      workload('W1', 12)
      workload('W1', opts.small and 16 or 128)
      workload('W2', 12)
      if not opts.small then workload('W2', 64) end
      -- the Open Neuromorphic benchmark's shape: forward + backward, no optimizer
      for _, n in ipairs(opts.small and {256} or {512, 4096, 16384}) do workload('W4', 16, n) end
   end
end

print('\nGPU benchmarks (' .. gpu.deviceName() .. ', medians)')
print(string.format('%-40s %12s %-8s %s', 'benchmark', 'value', 'unit', 'note'))
for _, r in ipairs(rows) do
   local v = type(r[2]) == 'number' and string.format('%.2f', r[2]) or r[2]
   print(string.format('%-40s %12s %-8s %s', r[1], v, r[3], r[4]))
end
