--[[
Where a W2 training step's time goes, op by op, on the GPU (or the CPU).

    luajit bench/gpu_layers.lua [--batch B] [--reps R] [--device cuda|cpu]

Each of W2's ops (bench/workloads.lua: psp before every conv, pool and
dense, then spike) runs alone on an input of its own shape: the median
milliseconds of its forward (no gradient recorded) and of its forward +
backward (the gradient of out:sum() with respect to its input, and to its
weight where it has one), each between two synchronisations.  The last
column is backward alone (the difference).  Inputs: spikes at 1.5% for the
first psp, at 5% for the later ones, and membrane potentials around the
threshold for the spike function.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/bench/[^/]*$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path

local snn = require 'slayer'
local T = snn.tensor

local opts = snn.utils.options({...}, {
   batch = {64, 'batch size', integer = true, min = 1},
   reps = {11, 'timed repetitions (median reported)', integer = true, min = 1},
   device = {'cuda', 'device', choices = {'cpu', 'cuda'}},
}, 'luajit bench/gpu_layers.lua [options]')
local DEV = opts.device
if DEV == 'cuda' and not snn.cuda.isAvailable() then
   print('gpu_layers.lua: no usable GPU: ' .. tostring(snn.cuda.unavailableReason()))
   os.exit(2)
end
local sync = DEV == 'cuda' and snn.cuda.synchronize or function() end

local sl = snn.layer({type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1,
   scaleRho = 1}, {Ts = 1, tSample = 300}):to(DEV)
local B = opts.batch
local function time(fn) return snn.utils.timeit(function() fn(); sync() end, opts.reps) * 1e3 end

-- one op: forward alone, and forward + backward of out:sum()
local rows = {}
local function op(name, shape, make, f, input)
   snn.manualSeed(3)
   local x = (input or function(s) return T.bernoulli(s, 0.05, DEV) end)(shape)
   local m = make and make() or nil
   if m then m:to(DEV) end
   local fwd = time(function() return snn.noGrad(function() return f(m, x:clone()) end) end)
   local xg = x:clone():requiresGrad(true)
   local both = time(function()
      if m then m:zeroGrad() end
      xg.grad = nil
      f(m, xg):sum():backward()
   end)
   rows[#rows + 1] = {name, fwd, both}
   io.write(string.format('  %-34s %9.2f %9.2f %9.2f\n', name, fwd, both, both - fwd))
   io.flush()
   collectgarbage('collect')
end

print(string.format('W2 op by op, batch %d, %s (ms, medians of %d)', B, DEV == 'cuda' and snn.cuda.deviceName() or 'CPU',
   opts.reps))
print(string.format('  %-34s %9s %9s %9s', 'op', 'forward', 'fwd+bwd', 'backward'))
local psp = function(_, x) return sl:psp(x) end
local spike = function(_, u) return sl:spike(u) end
local call = function(m, x) return m(x) end
local potential = function(s) return T.randn(s, DEV) * 4 + 6 end
op('psp [B,2,34,34,300] (1.5%)', {B, 2, 34, 34, 300}, nil, psp, function(s) return T.bernoulli(s, 0.015, DEV) end)
op('conv1 2->16 k5 p1', {B, 2, 34, 34, 300}, function() return sl:conv(2, 16, 5, 1, 1) end, call)
op('spike [B,16,32,32,300]', {B, 16, 32, 32, 300}, nil, spike, potential)
op('psp [B,16,32,32,300]', {B, 16, 32, 32, 300}, nil, psp)
op('pool1 2', {B, 16, 32, 32, 300}, function() return sl:pool(2) end, call)
op('spike [B,16,16,16,300]', {B, 16, 16, 16, 300}, nil, spike, potential)
op('psp [B,16,16,16,300]', {B, 16, 16, 16, 300}, nil, psp)
op('conv2 16->32 k3 p1', {B, 16, 16, 16, 300}, function() return sl:conv(16, 32, 3, 1, 1) end, call)
op('spike [B,32,16,16,300]', {B, 32, 16, 16, 300}, nil, spike, potential)
op('psp [B,32,16,16,300]', {B, 32, 16, 16, 300}, nil, psp)
op('pool2 2', {B, 32, 16, 16, 300}, function() return sl:pool(2) end, call)
op('spike [B,32,8,8,300]', {B, 32, 8, 8, 300}, nil, spike, potential)
op('psp [B,32,8,8,300]', {B, 32, 8, 8, 300}, nil, psp)
op('conv3 32->64 k3 p1', {B, 32, 8, 8, 300}, function() return sl:conv(32, 64, 3, 1, 1) end, call)
op('spike [B,64,8,8,300]', {B, 64, 8, 8, 300}, nil, spike, potential)
op('psp [B,64,8,8,300]', {B, 64, 8, 8, 300}, nil, psp)
op('dense 4096->10', {B, 64, 8, 8, 300}, function() return sl:dense({8, 8, 64}, 10) end, call)
local f, b = 0, 0
for _, r in ipairs(rows) do f, b = f + r[2], b + r[3] end
print(string.format('  %-34s %9.2f %9.2f %9.2f', 'sum', f, b, b - f))
-- the convs again through the columns and cuBLAS (conv.sparse = false: the
-- path before the direct kernels, still taken by groups, strides and wide
-- layers), to place the direct kernels' limits
if DEV == 'cuda' then
   local function columns(...)
      local args = {...}
      return function()
         local c = sl:conv(unpack(args))
         c.sparse = false
         return c
      end
   end
   print('  the convs through the columns and cuBLAS instead:')
   op('conv1 2->16 k5 p1 (columns)', {B, 2, 34, 34, 300}, columns(2, 16, 5, 1, 1), call)
   op('conv2 16->32 k3 p1 (columns)', {B, 16, 16, 16, 300}, columns(16, 32, 3, 1, 1), call)
   op('conv3 32->64 k3 p1 (columns)', {B, 32, 8, 8, 300}, columns(32, 64, 3, 1, 1), call)
end
