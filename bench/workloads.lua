--[[
The standard training workloads (../shared/BENCHMARKS.md), timed per step.

    luajit bench/workloads.lua [--threads N] [--steps S] [--warmup W] [--only W1|W2|W2after|W4] [--batch B]
                               [--device cpu|cuda] [--n 512,4096] [--w4input spikes|dense] [--names N]
                               [--profile]

W1 nmnist-mlp: 2312 (2x34x34) -> 512 -> 10, T = 300, Ts = 1, batch 12,
   SRM neurons (theta 10, tauSr 10, tauRef 1, scaleRef 2, tauRho 1,
   scaleRho 1), numSpikes loss (window [0, 300), counts 60/10), Adam.
W2 nmnist-cnn: conv 2->16 k5 p1, pool 2, conv 16->32 k3 p1, pool 2,
   conv 32->64 k3 p1, dense 8*8*64 -> 10, psp before every layer, T = 300,
   batch 12.  Also "W2, psp after": the same network with psp after each
   layer's linear map (as the examples write it), so the convs see spikes.
Inputs: Bernoulli spikes at 1.5% per bin, fixed seed.  One step =
forward + loss + backward + Adam step.  Prints the median (and min/max)
milliseconds per step over S steps after W warm-up steps (default 1 on the
CPU, up to 40 on the GPU: see the option), the forward alone, the peak
resident memory of the process, and the Lua collections the library forced
per timed step.  --names N keeps a SpikeFiles dataset of N samples alive
(from a generated list file; no sample is read), as a training script
does: every collection then visits what it holds.  --names N --plain
keeps N path strings in a Lua table instead, as datasets did before
they packed their paths.
W4 (only when asked for, --only W4): the Open Neuromorphic library
   benchmark's shape, one dense n -> n layer and spiking neurons (psp after
   the dense map, W1's neuron), batch 16, T = 500, for each n of --n
   (default 512,4096; 16384 needs 1 GB of weights and minutes per step on a
   CPU).  Timed: forward and backward of out:sum(), no optimizer, as that
   benchmark times it.  The input is 1.5% Bernoulli spikes (our workloads'
   convention) or, with --w4input dense, uniform random values in [0, 1).
--profile (with --device cuda): after the first workload's warm-up, one more
step, untimed, inside snn.cuda.profilerStart/Stop, for a profiler run with
--profile-from-start off (bench/device.sh: Nsight Compute's time per kernel
of W2's step, summed by bench/kernels.lua).
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/bench/[^/]*$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path

local snn = require 'slayer'
local ffi = require 'ffi'
local T = snn.tensor

local now = snn.utils.now

local opts = snn.utils.options({...}, {
   threads = {2, 'CPU threads', integer = true, min = 1},
   steps = {10, 'timed steps after the warm-up', integer = true, min = 1},
   warmup = {nil, 'untimed steps first (default: 1 on the CPU; on the GPU 40, or fewer (at least 3) once they took 2 s: '
      .. 'LuaJIT compiling its traces over the first steps costs more than a small step)', type = 'number', integer = true, min = 1},
   only = {'all', 'run only this workload (W4 runs only when asked for)', choices = {'all', 'W1', 'W2', 'W2after', 'W4'}},
   batch = {nil, 'batch size (default: 12, W4: 16)', type = 'number', integer = true, min = 1},
   device = {'cpu', 'device to run on', choices = {'cpu', 'cuda'}},
   n = {'512,4096', 'layer sizes of W4', check = function(v) return not v:match('^%d+[%d,]*$') and 'sizes like 512,4096' or nil end},
   w4input = {'spikes', 'input of W4', choices = {'spikes', 'dense'}},
   names = {0, 'keep a SpikeFiles dataset of this many samples alive, as a training script does '
      .. '(60000 for N-MNIST): the collector\'s cost grows with the Lua heap', integer = true, min = 0},
   plain = {false, 'with --names: hold the sample paths as Lua strings in a table instead of a dataset'},
   profile = {false, 'with --device cuda: one untimed step of the first workload inside cuda.profilerStart/Stop'},
}, 'luajit bench/workloads.lua [options]')
if opts.profile and opts.device ~= 'cuda' then
   io.stderr:write('bench/workloads.lua: --profile needs --device cuda\n')
   os.exit(2)
end
local profileNext = opts.profile -- the first workload's, once
snn.setNumThreads(opts.threads)

local netParams = {
   neuron = {type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1, scaleRho = 1},
   simulation = {Ts = 1, tSample = 300},
   training = {error = {type = 'NumSpikes', tgtSpikeRegion = {start = 0, stop = 300},
      tgtSpikeCount = {[true] = 60, [false] = 10}}},
}

local median = snn.utils.median

local function peakRssMB()
   for line in io.lines('/proc/self/status') do
      local kb = line:match('^VmHWM:%s+(%d+)')
      if kb then return tonumber(kb) / 1024 end
   end
end

-- Network definitions, written as a user would
local MLP = snn.class('W1', snn.Module)
function MLP:__init(p)
   snn.Module.__init(self)
   self.slayer = snn.layer(p.neuron, p.simulation)
   self.fc1 = self.slayer:dense({34, 34, 2}, 512)
   self.fc2 = self.slayer:dense(512, 10)
end
function MLP:forward(x)
   local sl = self.slayer
   local s1 = sl:spike(sl:psp(self.fc1(x)))
   return sl:spike(sl:psp(self.fc2(s1)))
end

local CNN = snn.class('W2', snn.Module)
function CNN:__init(p)
   snn.Module.__init(self)
   local sl = snn.layer(p.neuron, p.simulation)
   self.slayer = sl
   self.conv1 = sl:conv(2, 16, 5, 1, 1)
   self.pool1 = sl:pool(2)
   self.conv2 = sl:conv(16, 32, 3, 1, 1)
   self.pool2 = sl:pool(2)
   self.conv3 = sl:conv(32, 64, 3, 1, 1)
   self.fc1 = sl:dense({8, 8, 64}, 10)
end
function CNN:forward(x)
   local sl = self.slayer
   local s = sl:spike(self.conv1(sl:psp(x)))
   s = sl:spike(self.pool1(sl:psp(s)))
   s = sl:spike(self.conv2(sl:psp(s)))
   s = sl:spike(self.pool2(sl:psp(s)))
   s = sl:spike(self.conv3(sl:psp(s)))
   return sl:spike(self.fc1(sl:psp(s)))
end

-- W2 with psp after each linear map: the same network (psp commutes with
-- them), but every conv sees sparse spikes (the examples' ordering)
local CNNafter = snn.class('W2after', CNN)
function CNNafter:forward(x)
   local sl = self.slayer
   local function layer(op, s) return sl:spike(sl:psp(op(s))) end
   local s = layer(self.conv1, x)
   s = layer(self.pool1, s)
   s = layer(self.conv2, s)
   s = layer(self.pool2, s)
   s = layer(self.conv3, s)
   return layer(self.fc1, s)
end

-- forward() gives the loss, finish(loss) the rest of the step; warm-up
-- steps (--warmup), then opts.steps timed ones (milliseconds, the device waited
-- for).  On the CPU each timed step also gives its forward's time.  On the
-- GPU a wait after the forward would idle the device while the host queues
-- the backward, so the timed steps wait only at their end, and the forward
-- is timed by as many forward-only runs after them.
local function timeSteps(name, batch, forward, finish)
   local gpu = opts.device == 'cuda'
   local c0, s0
   local sync = gpu and snn.cuda.synchronize or function() end
   local steps, fwd = {}, {}
   local warm, started = 0, now()
   while warm < (opts.warmup or 1) or (gpu and not opts.warmup and warm < 40 and (warm < 3 or now() - started < 2)) do
      finish(forward())
      sync()
      warm = warm + 1
   end
   if profileNext then
      profileNext = false
      snn.cuda.profilerStart()
      finish(forward())
      sync()
      snn.cuda.profilerStop()
   end
   for i = 1, opts.steps do
      if i == 1 then c0, s0 = T._collections() end
      local t0 = now()
      local loss = forward()
      if not gpu then sync() end
      local t1 = now()
      finish(loss)
      sync()
      local t2 = now()
      steps[#steps + 1] = (t2 - t0) * 1000
      if not gpu then fwd[#fwd + 1] = (t1 - t0) * 1000 end
   end
   local c1, s1 = T._collections()
   if gpu then
      for _ = 1, opts.steps do
         local t0 = now()
         local loss = forward()
         sync()
         fwd[#fwd + 1] = (now() - t0) * 1000
         loss = nil
      end
   end
   table.sort(steps)
   return {name = name, batch = batch, step = median(steps), min = steps[1], max = steps[#steps], fwd = median(fwd),
      collections = (c1 - c0) / opts.steps, collectMs = (s1 - s0) * 1000 / math.max(c1 - c0, 1)}
end

local function run(name, Net, batch)
   snn.manualSeed(0)
   local net = Net(netParams)
   local dev = opts.device
   if dev ~= 'cpu' then net:to(dev) end
   local err = snn.loss(netParams)
   if dev ~= 'cpu' then err:to(dev) end
   local opt = snn.optim.Adam(net:parameters(), {lr = 0.01, amsgrad = true})
   local x = T.bernoulli({batch, 2, 34, 34, 300}, 0.015):to(dev)
   local target = T.zeros({batch, 10, 1, 1, 1})
   for n = 1, batch do target:select(1, n):select(1, (n - 1) % 10 + 1):fill(1) end
   target = target:to(dev)
   return timeSteps(name, batch, function()
      opt:zeroGrad()
      return err:numSpikes(net(x), target)
   end, function(loss)
      loss:backward()
      opt:step()
   end)
end

-- W4: one dense n -> n layer of spiking neurons, batch 16, T = 500;
-- forward + backward of out:sum()
local function runW4(n, batch)
   snn.manualSeed(0)
   local dev = opts.device
   local p = {neuron = netParams.neuron, simulation = {Ts = 1, tSample = 500}}
   local sl = snn.layer(p.neuron, p.simulation)
   local fc = sl:dense(n, n)
   if dev ~= 'cpu' then sl:to(dev); fc:to(dev) end
   local shape = {batch, n, 1, 1, 500}
   local x = (opts.w4input == 'dense' and T.rand(shape) or T.bernoulli(shape, 0.015)):to(dev)
   return timeSteps('W4 n=' .. n, batch, function()
      fc:zeroGrad()
      return sl:spike(sl:psp(fc(x))):sum()
   end, function(loss) loss:backward() end)
end

-- a dataset of that many samples, held as a training script holds it
local names
if opts.names > 0 and opts.plain then
   names = {}
   for i = 1, opts.names do names[i] = 'data/nmnist/train/' .. i .. '.bs2' end
elseif opts.names > 0 then
   local list = os.tmpname()
   local lines = {'#sample\tclass'}
   for i = 1, opts.names do lines[#lines + 1] = (i - 1) .. '\t' .. (i - 1) % 10 end
   snn.utils.writeFile(list, table.concat(lines, '\n') .. '\n')
   names = snn.data.SpikeFiles{root = 'data/nmnist/train', list = list}
   os.remove(list)
end

local results = {}
if opts.only == 'W4' then
   for n in opts.n:gmatch('%d+') do results[#results + 1] = runW4(tonumber(n), opts.batch or 16) end
end
local all = opts.only == 'all'
if all or opts.only == 'W1' then results[#results + 1] = run('W1 nmnist-mlp', MLP, opts.batch or 12) end
if all or opts.only == 'W2' then results[#results + 1] = run('W2 nmnist-cnn', CNN, opts.batch or 12) end
if all or opts.only == 'W2' or opts.only == 'W2after' then
   results[#results + 1] = run('W2, psp after', CNNafter, opts.batch or 12)
end

print(string.format('workloads on %s, %d threads, %d steps after warm-up%s', opts.device, opts.threads, opts.steps,
   opts.only == 'W4' and ' (W4: forward + backward, ' .. opts.w4input .. ' input)' or ''))
print(string.format('%-16s %6s %12s %10s %10s %12s', 'workload', 'batch', 'step median', 'min', 'max', 'forward'))
for _, r in ipairs(results) do
   print(string.format('%-16s %6d %9.1f ms %7.1f ms %7.1f ms %9.1f ms', r.name, r.batch, r.step, r.min, r.max, r.fwd))
end
print(string.format('peak resident memory: %.0f MB; peak live tensor memory on %s: %.0f MB', peakRssMB(), opts.device,
   snn.memoryStats(opts.device).peakLiveBytes / 2 ^ 20))
for _, r in ipairs(results) do
   print(string.format('Lua collections forced per timed step, %s: %.2f (%.1f ms each)', r.name, r.collections,
      r.collectMs))
end
