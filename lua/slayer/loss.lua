--[[
snn.loss -- the reference's spikeLoss (SPEC.md section 11).

    local err = snn.loss(netParams)                       -- neuron, simulation, training.error
    local err = snn.loss(errorDesc, neuronDesc, simDesc)  -- the documented 3-argument form
    local err = snn.loss(netParams, snn.loihi)            -- Loihi psp kernel

The loss builds its own spike layer of `slayerClass` (snn.layer by default)
and uses its psp kernel.  Both losses return a one-element tensor:

  spikeTime(out, desired):  e = psp(out - desired);  E = 1/2 * sum(e^2) * Ts
  numSpikes(out, desiredClass, numSpikesScale):
     window [start, stop) = rint(tgtSpikeRegion / Ts) bins;
     actual  = Ts * sum of out over the window (per neuron, constant);
     desired = tgtSpikeCount[true] where desiredClass == 1, else [false];
     c = (actual - desired) / (stop - start) * numSpikesScale;
     e = psp(out - R*out_detached) + c*R  (R: 1 inside the window);
     E = 1/2 * sum(e^2) * Ts
Sums run over the whole batch (no averaging), as the reference.  The
gradient to out is corr(Ts*e, psp kernel, Ts) over all bins.  probSpikes,
an empty stub in the reference, raises an error.
]]
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'
local nn = require 'slayer.nn'

local C = L.C

local Loss = nn.class('snn.loss', nn.Module)

local function fail(msg) L.raise('loss: ' .. msg) end

local function isLayerClass(x)
   return type(x) == 'table' and getmetatable(x) ~= nil and rawget(x, '__typename') ~= nil and x.psp ~= nil
end

function Loss:__init(a, b, c, d)
   nn.Module.__init(self)
   local errorDesc, neuron, simulation, slayerClass
   if type(a) ~= 'table' then fail('expected a network descriptor or an error descriptor table, got ' .. type(a)) end
   if b ~= nil and not isLayerClass(b) and isLayerClass(getmetatable(b)) then
      fail('expected a layer class (snn.layer or snn.loihi) after the network descriptor, got a layer made by '
         .. tostring(getmetatable(b).__typename) .. ': write snn.loss(params, ' .. tostring(getmetatable(b).__typename)
         .. ')')
   end
   if b ~= nil and not isLayerClass(b) then
      errorDesc, neuron, simulation, slayerClass = a, b, c, d
   else
      slayerClass = b
      neuron, simulation = a.neuron, a.simulation
      errorDesc = a.training and a.training.error
      if neuron == nil then fail("network descriptor has no 'neuron' section") end
      if simulation == nil then fail("network descriptor has no 'simulation' section") end
      if errorDesc == nil then fail("network descriptor has no 'training.error' section") end
   end
   if type(errorDesc) ~= 'table' then fail('expected an error descriptor table, got ' .. type(errorDesc)) end
   slayerClass = slayerClass or require('slayer.layer')
   self.errorDescriptor = require('slayer.layer')._copyTable(errorDesc)
   self.slayer = slayerClass(neuron, simulation)
   self.Ts = self.slayer.Ts
end

-- E = 1/2 * sum(e^2) * Ts as one op each way (ops/loss.c: bit-identical to
-- (e:square():sum() * 0.5) * Ts, in a pass where that took about ten)
local function halfSquaredSum(e, Ts, fname)
   e = T._contig(e)
   local out = T._emptyOf({1}, e._c.device, fname)
   if C.sl_half_sq_sum(out._c, e._c, Ts) ~= 0 then L.raise(fname .. ': ' .. L.lastError()) end
   return A.record(out, {e}, function(g)
      local ge = T._emptyLike(e)
      if C.sl_half_sq_sum_backward(ge._c, T._contig(g)._c, e._c, Ts) ~= 0 then
         L.raise(fname .. ': ' .. L.lastError())
      end
      return ge
   end, 1)
end
Loss._halfSquaredSum = halfSquaredSum

local function checkType(self, want, fname)
   local t = self.errorDescriptor.type
   if t ~= want then
      L.raise(fname .. ": error type is '" .. L.valueStr(t) .. "', expected '" .. want .. "'")
   end
end

local function check5D(x, fname, what)
   if not T.isTensor(x) or x:dim() ~= 5 then
      L.raise(fname .. ': expected ' .. what .. ' as a 5-D (N, C, H, W, T) tensor, got '
         .. (T.isTensor(x) and T.shapeStr(x) or type(x)))
   end
end

--- Half to even, as numpy's rint.
local function rint(x)
   local f = math.floor(x)
   local d = x - f
   if d > 0.5 then return f + 1 end
   if d < 0.5 then return f end
   return f % 2 == 0 and f or f + 1
end
Loss.rint = rint

function Loss:spikeTime(spikeOut, spikeDesired)
   local fname = 'spikeTime'
   checkType(self, 'SpikeTime', fname)
   check5D(spikeOut, fname, 'spikeOut')
   check5D(spikeDesired, fname, 'spikeDesired')
   if T.shapeStr(spikeOut) ~= T.shapeStr(spikeDesired) then
      L.raise(fname .. ': spikeOut ' .. T.shapeStr(spikeOut) .. ' and spikeDesired ' .. T.shapeStr(spikeDesired)
         .. ' differ')
   end
   return halfSquaredSum(self.slayer:psp(spikeOut - spikeDesired), self.Ts, fname)
end

function Loss:numSpikes(spikeOut, desiredClass, numSpikesScale)
   local fname = 'numSpikes'
   checkType(self, 'NumSpikes', fname)
   check5D(spikeOut, fname, 'spikeOut')
   check5D(desiredClass, fname, 'desiredClass')
   numSpikesScale = numSpikesScale or 1
   if not L.isFinite(numSpikesScale) then
      L.raise(fname .. ': expected numSpikesScale as a finite number, got ' .. L.valueStr(numSpikesScale))
   end
   local N, Cn, H, W, Tn = unpack(spikeOut:shape())
   local dc = desiredClass:shape()
   if dc[1] ~= N or dc[2] ~= Cn or dc[3] ~= H or dc[4] ~= W or dc[5] ~= 1 then
      L.raise(fname .. ': expected desiredClass [' .. N .. ', ' .. Cn .. ', ' .. H .. ', ' .. W .. ', 1] for spikeOut '
         .. T.shapeStr(spikeOut) .. ', got ' .. T.shapeStr(desiredClass))
   end
   local ed = self.errorDescriptor
   local region, count = ed.tgtSpikeRegion, ed.tgtSpikeCount
   if type(region) ~= 'table' or type(region.start) ~= 'number' or type(region.stop) ~= 'number' then
      L.raise(fname .. ': error descriptor needs tgtSpikeRegion {start, stop} in ms')
   end
   for _, k in ipairs({'start', 'stop'}) do
      local v = region[k]
      if not L.isFinite(v) then
         L.raise(fname .. ': tgtSpikeRegion.' .. k .. ' must be a finite time in ms, got ' .. v)
      end
   end
   if type(count) ~= 'table' or type(count[true]) ~= 'number' or type(count[false]) ~= 'number' then
      L.raise(fname .. ': error descriptor needs tgtSpikeCount with boolean keys {true: n, false: m}')
   end
   local Ts = self.Ts
   local start, stop = rint(region.start / Ts), rint(region.stop / Ts)
   if stop <= start then L.raise(fname .. ': empty target region [' .. start .. ', ' .. stop .. ') bins') end
   if start < 0 then
      -- Python's slice would count a negative bin from the end of the sample
      L.raise(string.format('%s: tgtSpikeRegion [%g, %g) ms begins before time 0 (bin %d)', fname, region.start,
         region.stop, start))
   end
   -- bins of the window that exist (Python slicing clamps the stop to the sample)
   local lo = math.min(start, Tn)
   local hi = math.max(lo, math.min(stop, Tn))
   if spikeOut.device ~= desiredClass.device then
      -- (the C dispatch would name them by their position in its call)
      L.raise(fname .. ': spikeOut on ' .. spikeOut.device .. ' and desiredClass on ' .. desiredClass.device
         .. ': move both to one device')
   end
   -- x = out - R * out_detached and c, per neuron, in one pass (ops/loss.c:
   -- the same float32 steps as the tensor ops of the formula above);
   -- x's gradient is out's (the window's part is detached)
   local x = T._emptyLike(spikeOut)
   local c = T._emptyOf({N, Cn, H, W, 1}, spikeOut._c.device, fname)
   if C.sl_numspikes_prep(x._c, c._c, T._contig(spikeOut)._c, T._contig(desiredClass)._c, lo, hi, Ts, count[true],
      count[false], stop - start, numSpikesScale) ~= 0 then
      L.raise(L.lastError()) -- (its messages begin with 'numSpikes: ')
   end
   A.record(x, {spikeOut}, function(g) return g end, 1)
   -- e = psp(x) + c * R
   local p = self.slayer:psp(x)
   local e = T._emptyLike(p)
   if C.sl_window_add(e._c, p._c, c._c, lo, hi) ~= 0 then L.raise(L.lastError()) end
   A.record(e, {p}, function(g) return g end, 1)
   return halfSquaredSum(e, Ts, fname)
end

--- The reference declares probSpikes without `self` and with an empty body:
-- there is no such loss to reproduce.
function Loss:probSpikes()
   L.raise('probSpikes: not implemented (the reference declares it without a body); use spikeTime or numSpikes')
end

function Loss:__tostring()
   return 'snn.loss(' .. tostring(self.errorDescriptor.type) .. ')'
end

return Loss
