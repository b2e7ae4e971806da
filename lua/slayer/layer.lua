--[[
snn.layer -- the SLAYER spike layer (the reference's spikeLayer).

    local sl = snn.layer(netParams.neuron, netParams.simulation)
    local fc = sl:dense({34, 34, 2}, 512)
    local s  = sl:spike(sl:psp(fc(input)))

Construction computes the SRM-alpha spike-response kernel (buffer
`srmKernel`) and refractory kernel (`refKernel`) from the neuron and
simulation descriptors exactly as the reference (SPEC.md section 5):
    alpha(tau, mult, EPS)[k] = mult * t / tau * exp(1 - t / tau),  t = k * Ts,
stopping before the first k with |value| < EPS and t > tau, in doubles,
rounded to float32 once.  srmKernel = alpha(tauSr, 1, 0.01); refKernel =
alpha(tauRef, -scaleRef * theta, 0.01, or 1e-4 with fullRefKernel).
The descriptors are copied: the caller's tables are never changed.

Every method works on 5-D NCHWT tensors and takes part in autograd.
]]
local ffi = require 'ffi'
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'
local nn = require 'slayer.nn'

local C = L.C

local Layer = nn.class('snn.layer', nn.Module)

local function fail(fname, msg) L.raise(fname .. ': ' .. msg) end

local function cfail() L.raise(L.lastError()) end

-- copy a descriptor table (params sections may carry metatables)
local function copyTable(t)
   local out = {}
   for k, v in pairs(t) do out[k] = type(v) == 'table' and copyTable(v) or v end
   return out
end
Layer._copyTable = copyTable

local function need(desc, section, key, fname)
   local v = desc[key]
   if v == nil then fail(fname, section .. " descriptor has no '" .. key .. "'") end
   if type(v) ~= 'number' then
      fail(fname, section .. "." .. key .. ' must be a number, got ' .. type(v) .. ' (' .. L.valueStr(v) .. ')')
   end
   return v
end
Layer._need = need

--- Python's int(a / b) for the number of time bins.
local function numBins(tSample, Ts)
   local q = tSample / Ts
   return q >= 0 and math.floor(q) or math.ceil(q)
end
Layer._numBins = numBins

--- The longest temporal kernel accepted (taps): an alpha kernel falls
-- below its cut-off after about 8 tau, so this is tau / Ts up to ~10^5.
Layer.maxKernelTaps = 1000000

--- The reference's _calculateAlphaKernel, in doubles.  fname names the
-- caller in errors (default 'alphaKernel').
function Layer.alphaKernel(tau, mult, EPS, Ts, tSample, fname)
   fname = fname or 'alphaKernel'
   for _, a in ipairs({{'tau', tau, true}, {'mult', mult}, {'EPS', EPS}, {'Ts', Ts, true}, {'tSample', tSample, true}}) do
      local v = a[2]
      if not L.isFinite(v) or (a[3] and v <= 0) then
         fail(fname, 'expected ' .. a[1] .. ' as a ' .. (a[3] and 'positive ' or '') .. 'finite number, got '
            .. L.valueStr(v))
      end
   end
   local vals = {}
   local n = math.ceil(tSample / Ts)
   for k = 0, n - 1 do
      local t = k * Ts
      local v = mult * t / tau * math.exp(1 - t / tau)
      if math.abs(v) < EPS and t > tau then break end
      if k == Layer.maxKernelTaps then
         fail(fname, string.format('the alpha kernel of tau %g would be longer than %d taps at Ts %g; '
            .. 'use a larger Ts (or raise snn.layer.maxKernelTaps)', tau, Layer.maxKernelTaps, Ts))
      end
      vals[#vals + 1] = v
   end
   return vals
end

local function kernelTensor(vals)
   return T.fromtable(vals, {#vals})
end
Layer._kernelTensor = kernelTensor

--- Check and store the simulation descriptor (shared by subclasses).
function Layer:_setSimulation(simulation, fname)
   if type(simulation) ~= 'table' then fail(fname, 'expected a simulation descriptor table, got ' .. type(simulation)) end
   self.simulation = copyTable(simulation)
   self.Ts = need(simulation, 'simulation', 'Ts', fname)
   self.tSample = need(simulation, 'simulation', 'tSample', fname)
   if not (self.Ts > 0 and self.Ts < math.huge) then
      fail(fname, 'simulation.Ts must be positive and finite, got ' .. self.Ts)
   end
   if not (self.tSample > 0 and self.tSample < math.huge) then
      fail(fname, 'simulation.tSample must be positive and finite, got ' .. self.tSample)
   end
   self.Ns = numBins(self.tSample, self.Ts)
   if self.Ns > 2 ^ 31 - 1 then
      fail(fname, string.format('simulation.tSample / Ts = %g time bins, more than a tensor dimension holds (2^31 - 1)',
         self.Ns))
   end
end

function Layer:__init(neuron, simulation, fullRefKernel)
   nn.Module.__init(self)
   local fname = 'layer'
   if type(neuron) ~= 'table' then fail(fname, 'expected a neuron descriptor table, got ' .. type(neuron)) end
   local ntype = neuron.type
   if ntype ~= nil and ntype ~= 'SRMALPHA' then
      fail(fname, "unknown neuron type '" .. L.valueStr(ntype) .. "' (snn.layer implements SRMALPHA; use snn.loihi for LOIHI)")
   end
   self:_setSimulation(simulation, fname)
   self.neuron = copyTable(neuron)
   for _, k in ipairs({'theta', 'tauSr', 'tauRef', 'scaleRef', 'tauRho', 'scaleRho'}) do
      local v = need(neuron, 'neuron', k, fname)
      -- thresholds and time constants divide: they must be positive
      local positive = k == 'theta' or k:sub(1, 3) == 'tau'
      if not L.isFinite(v) or (positive and not (v > 0)) then
         fail(fname, 'neuron.' .. k .. ' must be ' .. (positive and 'positive and ' or '') .. 'finite, got ' .. v)
      end
   end
   self.fullRefKernel = fullRefKernel and true or false
   self.srmKernel = self:calculateSrmKernel()
   self.refKernel = self:calculateRefKernel()
end

function Layer:calculateSrmKernel()
   return kernelTensor(Layer.alphaKernel(self.neuron.tauSr, 1, 0.01, self.Ts, self.tSample, 'layer'))
end

function Layer:calculateRefKernel()
   local n = self.neuron
   local eps = self.fullRefKernel and 0.0001 or 0.01
   return kernelTensor(Layer.alphaKernel(n.tauRef, -n.scaleRef * n.theta, eps, self.Ts, self.tSample, 'layer'))
end

function Layer:__tostring()
   return string.format('%s(theta=%g, tauSr=%g, Ts=%g, tSample=%g, srmKernel %d, refKernel %d)',
      self.__typename, self.neuron.theta or 0, self.neuron.tauSr or 0, self.Ts, self.tSample,
      self.srmKernel:numel(), self.refKernel:numel())
end

---------------------------------------------------------------------------
-- checks
---------------------------------------------------------------------------

local function check5D(x, fname)
   if not T.isTensor(x) then fail(fname, 'expected a 5-D (N, C, H, W, T) tensor, got ' .. type(x)) end
   if x:dim() ~= 5 then
      fail(fname, 'expected a 5-D (N, C, H, W, T) tensor, got ' .. T.shapeStr(x))
   end
end
Layer._check5D = check5D

local function sameDevice(fname, a, b)
   if a.device ~= b.device then
      fail(fname, 'tensors on different devices (' .. a.device .. ' and ' .. b.device .. ')')
   end
end

---------------------------------------------------------------------------
-- temporal filtering: psp, pspLayer, pspFilter
---------------------------------------------------------------------------

--- y = Ts * (filters conv x) row by row; filters [F, K]; output [N, F*C, H, W, T].
local function tconv(x, filters, Ts, F)
   local s = x:shape()
   s[2] = s[2] * F
   local out = T._emptyOf(s, T._deviceNum(x.device), 'psp')
   if C.sl_temporal_conv(out._c, T._contig(x)._c, filters._c, Ts) ~= 0 then cfail() end
   return out
end

local function tcorr(g, filters, Ts, inShape, device)
   local out = T._emptyOf(inShape, T._deviceNum(device), 'psp')
   if C.sl_temporal_corr(out._c, T._contig(g)._c, filters._c, Ts) ~= 0 then cfail() end
   return out
end

local function tflip(w)
   local out = T._emptyLike(w)
   if C.sl_temporal_flip(out._c, T._contig(w)._c) ~= 0 then cfail() end
   return out
end

--- Filter x (5-D, time last) with the kernel `filter` (any shape, numel K)
-- causally: y[t] = Ts * sum_i filter[i] * x[t - i].  Gradient to x only.
function Layer.filterSignal(x, filter, Ts, fname)
   fname = fname or 'psp'
   check5D(x, fname)
   sameDevice(fname, x, filter)
   local out = tconv(x, filter, Ts, 1)
   if A.needed(x) then
      local inShape, dev = x:shape(), x.device
      A.record(out, {x}, function(g) return tcorr(g, filter, Ts, inShape, dev) end, 1)
   end
   return out
end

--- psp: spikes filtered with the spike-response kernel.
function Layer:psp(spike)
   return Layer.filterSignal(spike, self.srmKernel, self.Ts, 'psp')
end

-- filter bank with learnable weights stored reversed (PyTorch correlation
-- order), weight [F, 1, 1, 1, K]
local function filterBank(x, weight, Ts, fname)
   check5D(x, fname)
   sameDevice(fname, x, weight)
   local F = weight:size(1)
   local K = weight:numel() / F
   local filt = tflip(T._contig(weight:detach()):view({F, K}))
   local out = tconv(x, filt, Ts, F)
   if A.needed(x, weight) then
      local inShape, dev = x:shape(), x.device
      local xd = T._contig(x:detach())
      A.record(out, {x, weight}, function(g)
         g = T._contig(g)
         local gx, gw
         if x._rg then gx = tcorr(g, filt, Ts, inShape, dev) end
         if weight._rg then
            local gf = T._emptyOf({F, K}, T._deviceNum(dev), fname)
            if C.sl_temporal_filter_grad(gf._c, g._c, xd._c, Ts) ~= 0 then cfail() end
            gw = tflip(gf):view(weight:shape())
         end
         return gx, gw
      end, 2)
   end
   return out
end

local PspLayer = nn.class('snn.pspLayer', nn.Module)
Layer.PspLayer = PspLayer

function PspLayer:__init(srmKernel, Ts)
   nn.Module.__init(self)
   local K = srmKernel:numel()
   self.Ts = Ts
   self.weight = tflip(T._contig(srmKernel)):view({1, 1, 1, 1, K}):clone():requiresGrad(true)
end

function PspLayer:forward(x)
   return filterBank(x, self.weight, self.Ts, 'pspLayer')
end

function PspLayer:__tostring()
   return string.format('pspLayer(%d)', self.weight:numel())
end

--- A learnable psp filter, initialised to the layer's psp kernel (stored
-- reversed in .weight, as the reference).
function Layer:pspLayer()
   return PspLayer(self.srmKernel, self.Ts)
end

local PspFilter = nn.class('snn.pspFilter', nn.Module)
Layer.PspFilter = PspFilter

function PspFilter:__init(nFilter, filterLength, Ts, filterScale)
   nn.Module.__init(self)
   local bound = 1 / math.sqrt(filterLength)
   self.Ts = Ts
   self.weight = T._rand({nFilter, 1, 1, 1, filterLength}, 0, 'pspFilter') * (2 * bound) - bound
   if filterScale ~= 1 then self.weight = self.weight * filterScale end
   self.weight = self.weight:detach():requiresGrad(true)
end

function PspFilter:forward(x)
   return filterBank(x, self.weight, self.Ts, 'pspFilter')
end

function PspFilter:__tostring()
   return string.format('pspFilter(%d filters of %d)', self.weight:size(1), self.weight:size(5))
end

--- A bank of nFilter learnable temporal filters of filterLength bins, each
-- initialised uniform on [-1/sqrt(L), 1/sqrt(L)] (times filterScale).  The
-- output has nFilter * C channels, filter-major.
function Layer:pspFilter(nFilter, filterLength, filterScale)
   local function posInt(v, name)
      if not L.isWhole(v, 1, 2 ^ 31 - 1) then
         fail('pspFilter', 'expected a positive integer ' .. name .. ', got ' .. L.valueStr(v))
      end
   end
   posInt(nFilter, 'nFilter')
   posInt(filterLength, 'filterLength')
   if filterScale ~= nil and not L.isFinite(filterScale) then
      fail('pspFilter', 'expected filterScale as a finite number, got ' .. L.valueStr(filterScale))
   end
   return PspFilter(nFilter, filterLength, self.Ts, filterScale or 1)
end

---------------------------------------------------------------------------
-- spike function
---------------------------------------------------------------------------

--- Spikes (1/Ts) where the membrane potential reaches theta, with the
-- refractory response added into the potential in place (as the
-- reference: the caller's tensor holds the post-refractory potential
-- afterwards).  Backward: the SLAYER surrogate on that potential.
function Layer:spike(membranePotential)
   return Layer.spikeFunction(membranePotential, self.refKernel, self.neuron, self.Ts)
end

function Layer.spikeFunction(u, refKernel, neuron, Ts, fname)
   fname = fname or 'spike'
   check5D(u, fname)
   sameDevice(fname, u, refKernel)
   local theta, tauRho, scaleRho = neuron.theta, neuron.tauRho, neuron.scaleRho
   local work = T._contig(u)
   local spikes = T._emptyLike(work)
   if C.sl_spike_forward(spikes._c, work._c, refKernel._c, theta, Ts) ~= 0 then cfail() end
   if A.needed(u) then
      -- the reference saves the tensor it was given: the modified one when it
      -- was contiguous, the untouched original otherwise
      local saved = T._contig(u:detach())
      local tau = tauRho * theta
      A.record(spikes, {u}, function(g)
         local gin = T._emptyLike(saved)
         if C.sl_spike_backward(gin._c, T._contig(g)._c, saved._c, theta, tau, scaleRho) ~= 0 then cfail() end
         return gin
      end, 1)
   end
   return spikes
end

---------------------------------------------------------------------------
-- delays
---------------------------------------------------------------------------

local function shiftRaw(x, delay, Ts, fname)
   local out = T._emptyLike(x)
   local rc
   if type(delay) == 'number' then
      rc = C.sl_shift(out._c, T._contig(x)._c, nil, delay, Ts)
   else
      rc = C.sl_shift(out._c, T._contig(x)._c, T._contig(delay)._c, 0, Ts)
   end
   if rc ~= 0 then L.raise(fname .. ': ' .. L.lastError()) end
   return out
end

local function negated(delay)
   if type(delay) == 'number' then return -delay end
   return -delay:detach()
end

--- Shift the input in time by trunc(delay / Ts) bins (Ts defaults to 1, as
-- the reference).  delay: a number, a one-element tensor, or one value per
-- neuron (C*H*W values).  Gradient to the input only.
function Layer:delayShift(input, delay, Ts)
   return Layer.delayShiftFunction(input, delay, Ts)
end

function Layer.delayShiftFunction(input, delay, Ts)
   local fname = 'delayShift'
   check5D(input, fname)
   Ts = Ts or 1
   if not L.isFinite(Ts) or Ts <= 0 then fail(fname, 'expected a positive finite Ts, got ' .. L.valueStr(Ts)) end
   if T.isTensor(delay) then
      if delay:numel() == 1 then
         delay = delay:item()
      else
         local R = input:size(2) * input:size(3) * input:size(4)
         if delay:numel() ~= R then
            fail(fname, 'expected a scalar delay or one per neuron (' .. R .. ' values for input '
               .. T.shapeStr(input) .. '), got ' .. T.shapeStr(delay))
         end
         sameDevice(fname, input, delay)
         delay = delay:detach()
      end
   elseif type(delay) ~= 'number' then
      fail(fname, 'expected a number or tensor delay, got ' .. type(delay))
   elseif not L.isFinite(delay) then
      -- (a NaN would shift by 0 bins and an infinity zero the signal: in a
      -- tensor of learned delays that is the reference's conversion, but a
      -- scalar given here is a mistake)
      fail(fname, 'expected a finite delay, got ' .. L.valueStr(delay))
   end
   local out = shiftRaw(input, delay, Ts, fname)
   return A.record(out, {input}, function(g) return shiftRaw(g, negated(delay), Ts, fname) end, 1)
end

local Delay = nn.class('snn.delay', nn.Module)
Layer.Delay = Delay

function Delay:__init(inputSize, Ts)
   nn.Module.__init(self)
   local shape
   if type(inputSize) == 'number' then
      shape = {inputSize, 1, 1}
   elseif type(inputSize) == 'table' and #inputSize == 3 then
      shape = {inputSize[1], inputSize[2], inputSize[3]}
   else
      fail('delay', 'expected inputSize as an integer or {C, H, W}, got ' .. L.valueStr(inputSize))
   end
   for i = 1, 3 do
      if not L.isWhole(shape[i], 1, 2 ^ 31 - 1) then
         fail('delay', 'expected positive integer sizes, got ' .. L.valueStr(shape[i]))
      end
   end
   self.Ts = Ts
   self.delay = T._rand(shape, 0, 'delay'):requiresGrad(true)
end

function Delay:__tostring()
   return 'delay(' .. table.concat(self.delay:shape(), 'x') .. ')'
end

function Delay:forward(input)
   local fname = 'delay'
   check5D(input, fname)
   sameDevice(fname, input, self.delay)
   local N, Cn, H, W = input:size(1), input:size(2), input:size(3), input:size(4)
   local d = self.delay
   local perChannel = d:numel() ~= Cn * H * W
   local full
   if perChannel then
      -- one delay per channel, tiled over H and W (the reference's repeat)
      if d:size(1) ~= Cn or d:size(2) ~= 1 or d:size(3) ~= 1 then
         fail(fname, 'delay of shape ' .. T.shapeStr(d) .. ' fits neither input ' .. T.shapeStr(input)
            .. ' per neuron nor per channel ({' .. Cn .. ', 1, 1})')
      end
      full = T._contig(d:detach():expand({Cn, H, W}))
   else
      full = T._contig(d:detach())
   end
   local Ts = self.Ts
   local out = shiftRaw(input, full, Ts, fname)
   return A.record(out, {input, d}, function(g)
      g = T._contig(g)
      local gin, gd
      if input._rg then gin = shiftRaw(g, -full, Ts, fname) end
      if d._rg then
         local per = T._emptyOf({Cn, H, W}, T._deviceNum(out.device), fname)
         if C.sl_delay_grad(per._c, g._c, out._c, Ts) ~= 0 then cfail() end
         gd = perChannel and per:view({Cn, H * W}):sum(2):view({Cn, 1, 1}) or per
      end
      return gin, gd
   end, 2)
end

--- A learnable delay per neuron ({C, H, W}) or per channel (an integer C:
-- {C, 1, 1}), initialised uniform on [0, 1) ms, applied in whole bins of the
-- simulation's Ts.  Clamp it to >= 0 after each optimizer step if causality
-- matters: `d.delay:clamp_(0)`.  As in the reference, per-neuron delays meet
-- the input's neurons in flattened (C, H, W) order, so any input with
-- C*H*W neurons fits: delay(512) serves a [N, 512, 1, 1, T] input and a
-- [N, 2, 16, 16, T] one alike.
function Layer:delay(inputSize)
   return Delay(inputSize, self.Ts)
end

---------------------------------------------------------------------------
-- synapses (lua/slayer/synapse.lua), with the reference's defaults
---------------------------------------------------------------------------

local function S() return require 'slayer.synapse' end

--- The fixed pool/unpool weight, 1.1 * theta (double product, then float32).
function Layer:poolWeight()
   return 1.1 * self.neuron.theta
end

function Layer:dense(inFeatures, outFeatures, weightScale, preHookFx)
   return S().Dense(inFeatures, outFeatures, weightScale or 10, preHookFx)
end

function Layer:conv(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, weightScale, preHookFx)
   return S().Conv(inChannels, outChannels, kernelSize, stride or 1, padding or 0, dilation or 1, groups or 1,
      weightScale or 100, preHookFx)
end

function Layer:pool(kernelSize, stride, padding, dilation, preHookFx)
   return S().Pool(kernelSize, stride, padding or 0, dilation or 1, self:poolWeight(), preHookFx)
end

function Layer:convTranspose(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, weightScale,
                             preHookFx)
   return S().ConvTranspose(inChannels, outChannels, kernelSize, stride or 1, padding or 0, dilation or 1,
      groups or 1, weightScale or 100, preHookFx)
end

function Layer:unpool(kernelSize, stride, padding, dilation, preHookFx)
   return S().Unpool(kernelSize, stride, padding or 0, dilation or 1, self:poolWeight(), preHookFx)
end

function Layer:dropout(p, inplace)
   return S().Dropout(p or 0.5, inplace or false)
end

function Layer:replicateInTime(input, mode)
   return S().replicateInTime(input, self.Ns, mode or 'nearest')
end

--- sl.dense(8, 4) written for sl:dense(8, 4) shifts every argument by one
-- and fails on the wrong one: the methods `names` of cls first check that
-- they were called on a layer, and say how to call them when not.
function Layer._requireColon(cls, kind, names)
   for _, name in ipairs(names) do
      local fn = rawget(cls, name)
      cls[name] = function(self, ...)
         if not nn.isInstance(self, cls) then
            fail(name, 'call it with a colon, sl:' .. name .. '(...), on a layer made by ' .. kind .. ' (got '
               .. (type(self) == 'table' and 'a table' or L.valueStr(self)) .. ' as the layer)')
         end
         return fn(self, ...)
      end
   end
end
Layer._requireColon(Layer, 'snn.layer', {'calculateSrmKernel', 'calculateRefKernel', 'psp', 'pspLayer', 'pspFilter',
   'spike', 'delayShift', 'delay', 'poolWeight', 'dense', 'conv', 'pool', 'convTranspose', 'unpool', 'dropout',
   'replicateInTime'})

return Layer
