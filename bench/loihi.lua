--[[
spikeLoihi benchmark: the integer Loihi neuron forward and its surrogate
backward on the N-MNIST hidden layer's size, N x 512 x 350 (batch 12).

    luajit bench/loihi.lua [--threads 2] [--reps 21] [--batch 12]

Input: weighted spikes W s with even integer weights in [-20, 20] and
Bernoulli(0.05) spikes from 128 sources.  Prints the median (min, max)
milliseconds of: forward (spikeLoihi, recording the voltage for backward),
backward (corr(g * rho(V), psp)), forward + backward, and spikeLoihiFull.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/bench/[^/]*$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path

local snn = require 'slayer'
local T = snn.tensor
local now = snn.utils.now

local opts = snn.utils.options({...}, {
   threads = {2, 'CPU threads', integer = true, min = 1},
   reps = {21, 'timed repetitions (median reported)', integer = true, min = 1},
   batch = {12, 'batch size', integer = true, min = 1},
}, 'luajit bench/loihi.lua [options]')
snn.setNumThreads(opts.threads)
snn.manualSeed(1)

local N, Nn, Tn = opts.batch, 512, 350
local sl = snn.loihi({type = 'LOIHI', vThMant = 80, vDecay = 128, iDecay = 1024, refDelay = 1, wgtExp = 0,
   tauRho = 1, scaleRho = 1}, {Ts = 1, tSample = Tn})
local fc = sl:dense(128, Nn, 20)
local x = snn.noGrad(function() return fc(T.bernoulli({N, 128, 1, 1, Tn}, 0.05)) end)
local g = T.randn({N, Nn, 1, 1, Tn})

-- median, min, max milliseconds of fn over opts.reps runs (garbage
-- collected between runs, outside the timing)
local function stats(fn)
   fn()
   local ts = {}
   for i = 1, opts.reps do
      collectgarbage()
      local t0 = now()
      fn()
      ts[i] = (now() - t0) * 1000
   end
   table.sort(ts)
   return snn.utils.median(ts), ts[1], ts[#ts]
end

local xg = x:detach():requiresGrad(true)
local spikes
local fwd = {stats(function() spikes = sl:spikeLoihi(xg) end)}
spikes = nil
local both = {stats(function()
   xg.grad = nil
   sl:spikeLoihi(xg):backward(g)
end)}
local full = {stats(function() sl:spikeLoihiFull(x) end)}
local s = sl:spikeLoihiFull(x)

print(string.format('spikeLoihi %d x %d x %d, %d threads, %d repetitions (spike rate %.3f per bin)', N, Nn, Tn,
   opts.threads, opts.reps, s:sum():item() / s:numel()))
print(string.format('%-36s %10s %10s %10s', 'op', 'median ms', 'min', 'max'))
local function line(name, r) print(string.format('%-36s %10.2f %10.2f %10.2f', name, r[1], r[2], r[3])) end
line('forward (spikeLoihi, grad mode)', fwd)
line('forward + backward', both)
print(string.format('%-36s %10.2f', 'backward (difference of medians)', both[1] - fwd[1]))
line('spikeLoihiFull (s, V, U)', full)
