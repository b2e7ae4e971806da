--[[
Synaptic-layer benchmarks at the shapes of the standard workloads
(W1 nmnist-mlp, W2 nmnist-cnn; batch 12, T = 300).

    luajit bench/synapse.lua [--threads N] [--reps R] [--sweep] [--cpu]

Prints the median milliseconds over R repetitions (after one warm-up) of
  - dense 2312 -> 512 (W1's input layer) on Bernoulli spikes at 1.5 % per
    bin: forward, and backward to the weight only (the input layer needs no
    input gradient), on the sparse-spike path and on the forced GEMM path;
  - dense 512 -> 10 on hidden spikes (5 %), forward and backward (input and
    weight);
  - each conv/pool/dense of W2 on dense inputs (the examples apply psp
    before every layer), forward and backward (conv1 to its weight only).
--sweep adds the sparse-vs-GEMM comparison at several densities, the data
behind S.sparseThreshold.  --cpu reports the process's CPU time instead of
wall time: on a machine shared with other jobs, with --threads 1, that is
close to what a free core takes.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/bench/[^/]*$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path

local snn = require 'slayer'
local T = snn.tensor

local clockId = 1 -- CLOCK_MONOTONIC; 2 = CLOCK_PROCESS_CPUTIME_ID (--cpu)
local function now() return snn.utils.now(clockId) end

local opts = snn.utils.options({...}, {
   threads = {2, 'CPU threads', integer = true, min = 1},
   reps = {11, 'timed repetitions after one warm-up (median reported)', integer = true, min = 1},
   sweep = {false, 'add the sparse-vs-GEMM comparison at several densities'},
   cpu = {false, "report the process's CPU time instead of wall time"},
}, 'luajit bench/synapse.lua [options]')
if opts.cpu then clockId = 2 end
snn.setNumThreads(opts.threads)

local median = snn.utils.median

-- median ms of fn() over opts.reps runs, after one warm-up; setup() (not
-- timed) runs before each call and its result is passed to fn
local function time(fn, setup)
   local ts = {}
   for r = 0, opts.reps do
      local arg = setup and setup()
      collectgarbage()
      local t0 = now()
      fn(arg)
      local dt = (now() - t0) * 1000
      if r > 0 then ts[#ts + 1] = dt end
   end
   return median(ts)
end

local sl = snn.layer({type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1, scaleRho = 1},
   {Ts = 1, tSample = 300})
local N, Tn = 12, 300

local rows = {}
local function row(name, fwd, bwd, note)
   rows[#rows + 1] = {name, fwd, bwd, note or ''}
end

-- forward and backward times of module m on input x (x requires a gradient
-- only when inputGrad is true)
local function measure(m, x, inputGrad)
   x = x:detach()
   if inputGrad then x:requiresGrad(true) end
   local fwd = snn.noGrad(function() return time(function() return m(x) end) end)
   local g
   local bwd = time(function(y) y:backward(g) end, function()
      for _, p in ipairs(m:parameters()) do p.grad = nil end
      x.grad = nil
      local y = m(x)
      g = g or T.randn(y:shape())
      return y
   end)
   return fwd, bwd
end

snn.manualSeed(0)

-- W1 input layer
local fc1 = sl:dense({34, 34, 2}, 512)
local spikes = T.bernoulli({N, 2, 34, 34, Tn}, 0.015)
for _, mode in ipairs({true, false}) do
   fc1.sparse = mode
   local f, b = measure(fc1, spikes, false)
   row('dense 2312->512, 1.5% spikes, ' .. (mode and 'sparse' or 'GEMM'), f, b, 'backward: weight only')
end
fc1.sparse = 'auto'

-- W1 output layer
local fc2 = sl:dense(512, 10)
local hidden = T.bernoulli({N, 512, 1, 1, Tn}, 0.05)
for _, mode in ipairs({true, false}) do
   fc2.sparse = mode
   local f, b = measure(fc2, hidden, true)
   row('dense 512->10, 5% spikes, ' .. (mode and 'sparse' or 'GEMM'), f, b, 'backward: input and weight')
end
fc2.sparse = 'auto'

-- W2 layers on dense (psp-filtered) inputs
local w2 = {
   {'conv 2->16 k5 p1, 34x34', sl:conv(2, 16, 5, 1, 1), {N, 2, 34, 34, Tn}, false},
   {'pool 2, 16x32x32', sl:pool(2), {N, 16, 32, 32, Tn}, true},
   {'conv 16->32 k3 p1, 16x16', sl:conv(16, 32, 3, 1, 1), {N, 16, 16, 16, Tn}, true},
   {'pool 2, 32x16x16', sl:pool(2), {N, 32, 16, 16, Tn}, true},
   {'conv 32->64 k3 p1, 8x8', sl:conv(32, 64, 3, 1, 1), {N, 32, 8, 8, Tn}, true},
   {'dense 8x8x64->10', sl:dense({8, 8, 64}, 10), {N, 64, 8, 8, Tn}, true},
}
for _, l in ipairs(w2) do
   local f, b = measure(l[2], T.rand(l[3]), l[4])
   local note = not l[4] and 'backward: weight only'
      or (l[2].outFeatures or l[2].outChannels) and 'backward: input and weight' or 'backward: input (fixed weight)'
   row(l[1], f, b, note)
end

print(string.format('synaptic layers, batch %d, T = %d, %d threads, median of %d (%s time)', N, Tn, opts.threads,
   opts.reps, clockId == 2 and 'CPU' or 'wall'))
print(string.format('%-40s %10s %10s  %s', 'op', 'fwd ms', 'bwd ms', ''))
print(string.rep('-', 90))
for _, r in ipairs(rows) do
   print(string.format('%-40s %10.2f %10.2f  %s', r[1], r[2], r[3], r[4]))
end

if opts.sweep then
   print()
   print('sparse vs GEMM path, dense 2312->512, forward + weight gradient (ms)')
   print(string.format('%-10s %10s %10s', 'density', 'sparse', 'GEMM'))
   for _, d in ipairs({0.01, 0.02, 0.05, 0.1, 0.15, 0.2}) do
      local x = T.bernoulli({N, 2, 34, 34, Tn}, d)
      local t = {}
      for k, mode in ipairs({true, false}) do
         fc1.sparse = mode
         local f, b = measure(fc1, x, false)
         t[k] = f + b
      end
      print(string.format('%-10s %10.2f %10.2f', string.format('%g%%', 100 * d), t[1], t[2]))
   end
   fc1.sparse = 'auto'
end
