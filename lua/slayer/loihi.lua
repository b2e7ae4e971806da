--[[
snn.loihi -- a spike layer with the integer neurons of Intel's Loihi chip
(the reference's slayerLoihi.spikeLayer; SPEC.md section 15).

    local sl = snn.loihi(netParams.neuron, netParams.simulation)
    local fc = sl:dense(2312, 512)                 -- weightScale 100, quantised in steps of 2
    local s  = sl:delayShift(sl:spikeLoihi(fc(x)), 1)
    local err = snn.loss(netParams, snn.loihi)     -- the loss with the Loihi psp kernel

Neuron descriptor: type LOIHI, vThMant, vDecay, iDecay, refDelay, wgtExp
(integers), tauRho, scaleRho.  Derived from snn.layer, so every snn.layer
method (psp, spike, pspLayer, delay, delayShift, dropout, ...) works, with
the Loihi kernels in place of the SRM ones:

  psp kernel: u0 = v0 = 2^(7 + wgtExp);  u <- floor(u * (4096 - iDecay) / 4096),
              v <- floor(v * (4096 - vDecay) / 4096) + u,  until v = 0;  kernel = v / 2
  refractory: refDelay entries -1000*theta (the first 0), then -2*[theta, r1, ...]
              with r <- floor(r * (4096 - vDecay) / 4096) until r = 0

Internally theta = vThMant * 64 and scaleRho = scaleRho / maxPsp (maxPsp =
the psp kernel's peak, 195 for the defaults): the numbers one reference
layer computes.  Unlike the reference, the caller's descriptor is never
changed, so building more layers or a loss from the same table does not
divide scaleRho again (see examples/nmnist-loihi/README.md to reproduce the
reference's doubly divided value).

When a decay is 0 the reference's kernel loops never end; here they stop
once the kernel has become constant (or, for iDecay = vDecay = 0, after Ns
bins) and are padded to Ns bins: psp, spike and the spikeLoihi backward only
ever use the first Ns taps, so the results are those of the infinite kernel.
]]
local ffi = require 'ffi'
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'
local nn = require 'slayer.nn'
local Layer = require 'slayer.layer'
local utils = require 'slayer.utils'

local C = L.C

local Loihi = nn.class('snn.loihi', Layer)

local function fail(fname, msg) L.raise(fname .. ': ' .. msg) end
local function cfail() L.raise(L.lastError()) end

---------------------------------------------------------------------------
-- descriptor
---------------------------------------------------------------------------

-- integer fields: name, lowest, highest, why
local INT_FIELDS = {
   {'vThMant', 1, 2 ^ 25 - 1, 'theta = vThMant * 64 must be a positive int32'},
   {'vDecay', 0, 4096, '12-bit decay'},
   {'iDecay', 0, 4096, '12-bit decay'},
   {'refDelay', 1, 2 ^ 31 - 1, 'refDelay 0 is undefined in the reference'},
   {'wgtExp', -6, 7, 'Loihi allows up to 7; below -6 the reference\'s weight scale 2^(6 + wgtExp) is undefined'},
}

--- Check a Loihi neuron descriptor; returns nothing or raises an error
-- naming the field and its value.
function Loihi.checkNeuron(neuron, fname)
   fname = fname or 'loihi'
   if type(neuron) ~= 'table' then fail(fname, 'expected a neuron descriptor table, got ' .. type(neuron)) end
   if neuron.type ~= nil and neuron.type ~= 'LOIHI' then
      fail(fname, "neuron.type must be 'LOIHI', got '" .. L.valueStr(neuron.type) .. "'")
   end
   for _, f in ipairs(INT_FIELDS) do
      local k, lo, hi, why = f[1], f[2], f[3], f[4]
      local v = neuron[k]
      if v == nil then fail(fname, "neuron descriptor has no '" .. k .. "'") end
      if type(v) ~= 'number' or v % 1 ~= 0 then
         fail(fname, 'neuron.' .. k .. ' must be an integer, got ' .. L.valueStr(v))
      end
      if v < lo or v > hi then
         fail(fname, string.format('neuron.%s must lie in [%d, %d] (%s), got %d', k, lo, hi, why, v))
      end
   end
   for _, k in ipairs({'tauRho', 'scaleRho'}) do
      local v = neuron[k]
      if v == nil then fail(fname, "neuron descriptor has no '" .. k .. "'") end
      if type(v) ~= 'number' then fail(fname, 'neuron.' .. k .. ' must be a number, got ' .. L.valueStr(v)) end
   end
   if not (neuron.tauRho > 0 and neuron.tauRho < math.huge) then
      fail(fname, 'neuron.tauRho must be positive and finite, got ' .. neuron.tauRho)
   end
   if not L.isFinite(neuron.scaleRho) then
      fail(fname, 'neuron.scaleRho must be finite, got ' .. neuron.scaleRho)
   end
end

-- a kernel that stays non-zero for n bins, past snn.layer.maxKernelTaps
local function tooLong(what, n)
   fail('loihi', string.format('the %s kernel would be %d taps long (more than snn.layer.maxKernelTaps = %d): '
      .. 'use a shorter tSample, a non-zero decay or a shorter refDelay', what, n, Layer.maxKernelTaps))
end

function Loihi:__init(neuron, simulation)
   nn.Module.__init(self)
   local fname = 'loihi'
   Loihi.checkNeuron(neuron, fname)
   self:_setSimulation(simulation, fname)
   self.neuron = Layer._copyTable(neuron)
   self.neuron.type = 'LOIHI'
   self.neuron.theta = neuron.vThMant * 64
   self.srmKernel = self:calculateSrmKernel()
   self.refKernel = self:calculateRefKernel()
   -- the peak of the float32 kernel (values are halves of integers: exact)
   local peak = 0
   for _, v in ipairs(self.srmKernel:totable()) do peak = math.max(peak, v) end
   self.maxPsp = peak
   self.neuron.scaleRho = neuron.scaleRho / peak
   self._cNeuron = ffi.new('sl_loihi_neuron', {neuron.vThMant, neuron.vDecay, neuron.iDecay, neuron.refDelay,
      neuron.wgtExp})
end

--- The Loihi psp kernel (SPEC 15.3) as a list of doubles.
function Loihi.pspKernel(neuron, Ns)
   local keepI, keepV = 4096 - neuron.iDecay, 4096 - neuron.vDecay
   local u = 2 ^ (7 + neuron.wgtExp)
   local v = u
   local vals = {v / 2}
   if keepI == 4096 and keepV == 4096 and Ns > Layer.maxKernelTaps then tooLong('psp', Ns) end
   while v > 0 do
      local un = math.floor(u * keepI / 4096)
      local vn = math.floor(v * keepV / 4096) + un
      if un == u and vn == v then -- constant from here on (a decay is 0)
         if Ns > Layer.maxKernelTaps then tooLong('psp', Ns) end
         while #vals < Ns do vals[#vals + 1] = v / 2 end
         break
      end
      u, v = un, vn
      vals[#vals + 1] = v / 2
      if keepI == 4096 and keepV == 4096 and #vals >= Ns then break end -- a perfect integrator
   end
   return vals
end

--- The Loihi refractory kernel (SPEC 15.4) as a list of doubles.
function Loihi.refKernelValues(neuron, Ns)
   local theta = neuron.vThMant * 64
   local vals = {}
   -- only the first Ns taps are ever used
   local delay = math.min(neuron.refDelay, Ns)
   if delay > Layer.maxKernelTaps then tooLong('refractory', delay) end
   for i = 1, delay do vals[i] = i == 1 and 0 or -1000 * theta end
   if delay == Ns then return vals end
   local keepV = 4096 - neuron.vDecay
   local r = theta
   vals[#vals + 1] = -2 * r
   while r > 0 do
      local rn = math.floor(r * keepV / 4096)
      if rn == r then -- vDecay 0: constant from here on
         if Ns > Layer.maxKernelTaps then tooLong('refractory', Ns) end
         while #vals < Ns do vals[#vals + 1] = -2 * r end
         break
      end
      r = rn
      vals[#vals + 1] = -2 * r
   end
   return vals
end

function Loihi:calculateSrmKernel()
   return Layer._kernelTensor(Loihi.pspKernel(self.neuron, self.Ns))
end

function Loihi:calculateRefKernel()
   return Layer._kernelTensor(Loihi.refKernelValues(self.neuron, self.Ns))
end

function Loihi:__tostring()
   local n = self.neuron
   return string.format('%s(vThMant=%d, vDecay=%d, iDecay=%d, refDelay=%d, wgtExp=%d, theta=%d, maxPsp=%g, '
      .. 'Ts=%g, tSample=%g)', self.__typename, n.vThMant, n.vDecay, n.iDecay, n.refDelay, n.wgtExp, n.theta,
      self.maxPsp, self.Ts, self.tSample)
end

---------------------------------------------------------------------------
-- the integer neuron
---------------------------------------------------------------------------

local function checkInput(x, fname)
   Layer._check5D(x, fname)
end

local function run(self, x, withV, withU, fname)
   local s = T._emptyLike(x)
   local V = withV and T._emptyLike(x) or nil
   local U = withU and T._emptyLike(x) or nil
   if C.sl_loihi_forward(s._c, V and V._c or nil, U and U._c or nil, x._c, self._cNeuron, self.Ts) ~= 0 then
      cfail()
   end
   return s, V, U
end

--- Loihi's integer dynamics on weighted spikes (NOT psp-filtered), returning
-- spikes (1/Ts).  Backward: corr(g * rho(V), psp kernel, Ts), with V the
-- recorded voltage and rho(V) = scaleRho/(tauRho*theta) * exp(-|V - theta|/(tauRho*theta)).
function Loihi:spikeLoihi(weightedSpikes)
   local fname = 'spikeLoihi'
   checkInput(weightedSpikes, fname)
   local x = T._contig(weightedSpikes)
   local grad = A.needed(weightedSpikes)
   local s, V = run(self, x, grad, false, fname)
   if grad then
      local theta = self.neuron.theta
      local tau, scale = self.neuron.tauRho * theta, self.neuron.scaleRho
      local psp, Ts = self.srmKernel, self.Ts
      A.record(s, {weightedSpikes}, function(g)
         local gr = T._emptyLike(V)
         if C.sl_spike_backward(gr._c, T._contig(g)._c, V._c, theta, tau, scale) ~= 0 then cfail() end
         local gin = T._emptyLike(V)
         if C.sl_temporal_corr(gin._c, gr._c, psp._c, Ts) ~= 0 then cfail() end
         return gin
      end, 1)
   end
   return s
end

--- The same dynamics, returning spikes (1/Ts), voltage and current
-- (float32 copies of the integer state; no gradient).
function Loihi:spikeLoihiFull(weightedSpikes)
   local fname = 'spikeLoihiFull'
   checkInput(weightedSpikes, fname)
   local s, V, U = run(self, T._contig(weightedSpikes), true, true, fname)
   return s, V, U
end

--- The membrane potential after the generic spike() as a (rows, Ns) tensor,
-- with the absolute-refractory marks (<= -500 theta) replaced by theta + 1.
function Loihi:getVoltage(membranePotential)
   local fname = 'getVoltage'
   if not T.isTensor(membranePotential) or membranePotential:numel() % self.Ns ~= 0 then
      fail(fname, 'expected a tensor with a multiple of Ns = ' .. self.Ns .. ' elements')
   end
   local theta = self.neuron.theta
   return A.noGrad(function()
      local u = T._contig(membranePotential:detach()):view({-1, self.Ns})
      local mark = u:le(-500 * theta)
      return u * (1 - mark) + mark * (theta + 1)
   end)
end

---------------------------------------------------------------------------
-- synapses: weightScale 100, weights quantised in steps of 2
---------------------------------------------------------------------------

local function S() return require 'slayer.synapse' end

local function step2(w) return require('slayer.quantize')(w, 2) end
Loihi.quantizeStep2 = step2

-- quantize: nil/true -> steps of 2 (the default), false -> none, or a
-- preHookFx function (the reference's argument)
local function hookOf(quantize, fname)
   if quantize == nil or quantize == true then return step2 end
   if quantize == false then return nil end
   if type(quantize) == 'function' then return quantize end
   fail(fname, 'expected quantize as a boolean or a preHookFx function, got ' .. type(quantize))
end

--- The pool/unpool weight: 1.1 * theta / maxPsp (float32), quantised in
-- steps of 2 (28 for the defaults).
function Loihi:poolWeight()
   local f = ffi.new('float[1]')
   f[0] = 1.1 * self.neuron.theta / self.maxPsp
   f[0] = f[0] / 2
   local h = f[0]
   local r = math.floor(h)
   local d = h - r
   if d > 0.5 or (d == 0.5 and r % 2 == 1) then r = r + 1 end
   return r * 2
end

function Loihi:dense(inFeatures, outFeatures, weightScale, quantize)
   return S().Dense(inFeatures, outFeatures, weightScale or 100, hookOf(quantize, 'dense'))
end

function Loihi:conv(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, weightScale, quantize)
   return S().Conv(inChannels, outChannels, kernelSize, stride or 1, padding or 0, dilation or 1, groups or 1,
      weightScale or 100, hookOf(quantize, 'conv'))
end

function Loihi:convTranspose(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, weightScale,
                             quantize)
   return S().ConvTranspose(inChannels, outChannels, kernelSize, stride or 1, padding or 0, dilation or 1,
      groups or 1, weightScale or 100, hookOf(quantize, 'convTranspose'))
end

-- pool and unpool: inherited; they take Loihi:poolWeight() and no hook by default

---------------------------------------------------------------------------
-- export for hardware mapping
---------------------------------------------------------------------------

-- JSON with sorted keys; tables with a positive length (or the ARRAY
-- marker) are arrays
local ARRAY = {}
local function jsonArray(t) return setmetatable(t, ARRAY) end

local function jsonEncode(v, indent)
   indent = indent or ''
   local tv = type(v)
   if tv == 'number' then
      if v ~= v or v == math.huge or v == -math.huge then return 'null' end
      if v % 1 == 0 and math.abs(v) < 2 ^ 53 then return string.format('%d', v) end
      return string.format('%.17g', v)
   elseif tv == 'string' then
      return '"' .. v:gsub('[%c"\\]', function(c)
         local esc = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
         return esc[c] or string.format('\\u%04x', c:byte())
      end) .. '"'
   elseif tv == 'boolean' then
      return tostring(v)
   elseif tv == 'nil' then
      return 'null'
   elseif tv == 'table' then
      local inner = indent .. '  '
      local parts = {}
      if #v > 0 or getmetatable(v) == ARRAY then
         local flat = true -- arrays of scalars stay on one line
         for i = 1, #v do
            parts[i] = jsonEncode(v[i], inner)
            flat = flat and type(v[i]) ~= 'table'
         end
         if #parts == 0 then return '[]' end
         if flat then return '[' .. table.concat(parts, ', ') .. ']' end
         for i = 1, #parts do parts[i] = inner .. parts[i] end
         return '[\n' .. table.concat(parts, ',\n') .. '\n' .. indent .. ']'
      end
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      for i, k in ipairs(keys) do
         local val = v[k]
         if val == nil then val = v[tonumber(k)] end
         parts[i] = inner .. jsonEncode(k) .. ': ' .. jsonEncode(val, inner)
      end
      if #parts == 0 then return '{}' end
      return '{\n' .. table.concat(parts, ',\n') .. '\n' .. indent .. '}'
   end
   L.raise('export: cannot encode a ' .. tv .. ' in JSON')
end
Loihi._jsonEncode = jsonEncode

-- the file of t's values, one integer per line, row-major; checked here,
-- before anything is written (Loihi takes integers; the int32 range bounds them)
local function integerFile(path, t, what)
   local x = T._contig(t:detach():cpu())
   local n = x:numel()
   local p = x:data()
   for i = 0, n - 1 do
      local v = p[i]
      if v % 1 ~= 0 or math.abs(v) >= 2 ^ 31 then
         error(string.format('export: %s holds the value %.9g at element %d; Loihi needs integer weights within '
            .. 'the int32 range (build the layer with quantize = true or quantise it before exporting)', what, v,
            i + 1), 0)
      end
   end
   return {path, function(emit)
      local buf = {}
      for i = 0, n - 1 do
         buf[#buf + 1] = string.format('%d', p[i])
         if #buf == 65536 then
            emit(table.concat(buf, '\n') .. '\n')
            buf = {}
         end
      end
      if #buf > 0 then emit(table.concat(buf, '\n') .. '\n') end
      T._anchor(x) -- p does not hold the values: x keeps them from the collector until they are written
   end}
end

local function ownerOf(root, name)
   local parts = {}
   for p in name:gmatch('[^.]+') do parts[#parts + 1] = p end
   local obj = root
   for i = 1, #parts - 1 do
      local k = parts[i]
      local v = obj[k]
      if v == nil and tonumber(k) then v = obj[tonumber(k)] end
      obj = v
      if type(obj) ~= 'table' then return nil end
   end
   return obj, parts[#parts], table.concat(parts, '.', 1, #parts - 1)
end

local function neuronSummary(layer)
   local n = layer.neuron
   return {vThMant = n.vThMant, vDecay = n.vDecay, iDecay = n.iDecay, refDelay = n.refDelay, wgtExp = n.wgtExp,
      tauRho = n.tauRho, theta = n.theta, scaleRho = n.scaleRho, maxPsp = layer.maxPsp,
      Ts = layer.Ts, tSample = layer.tSample}
end

--- Write what is needed to map a trained network to Loihi into dir:
--   <layer>.txt        the layer's effective weights (after its preHookFx, i.e.
--                      quantised), one integer per line, row-major in the
--                      weight's shape (dense, conv, convTranspose, pool, unpool)
--   <name>.delay.txt   floor of each learned delay (snn.delay modules), one per line
--   network.json       layer order, types, shapes and geometry, file names, and
--                      the neuron parameters of every Loihi layer in net
--                      (including the internal theta and scaleRho)
-- Layers are listed in the module walk order (the order of
-- net:parameters(): a Sequential's order, named fields sorted by name);
-- opts.order = {'fc1', 'delay1', ...} lists them in another order.
-- Every value is checked before any file is written; the files are written
-- under temporary names and renamed together, so a failure leaves none of
-- them.  Returns the summary.
function Loihi.export(net, dir, opts)
   local fname = 'export'
   if not nn.isModule(net) then fail(fname, 'expected a network module, got ' .. type(net)) end
   if type(dir) ~= 'string' or dir == '' then fail(fname, 'expected a directory path, got ' .. L.valueStr(dir)) end
   opts = opts or {}
   if type(opts) ~= 'table' then fail(fname, 'expected an options table {order =}, got ' .. type(opts)) end
   local Sy = S()
   local kinds = {
      {Sy.Dense, 'dense'}, {Sy.Conv, 'conv'}, {Sy.ConvTranspose, 'convTranspose'}, {Sy.Pool, 'pool'},
      {Sy.Unpool, 'unpool'},
   }
   local function kindOf(m)
      for _, k in ipairs(kinds) do if nn.isInstance(m, k[1]) then return k[2] end end
   end
   local layers, neurons, byName = {}, {}, {}
   for _, e in ipairs(net:namedTensors()) do
      local m, field, mname = ownerOf(net, e.name)
      local kind = m and kindOf(m)
      if kind and field == 'weight' then
         local entry = {name = mname, type = kind, module = m}
         layers[#layers + 1] = entry
         byName[mname] = entry
      elseif m and nn.isInstance(m, Layer.Delay) and field == 'delay' then
         local entry = {name = e.name, type = 'delay', module = m}
         layers[#layers + 1] = entry
         byName[e.name] = entry
      elseif m and nn.isInstance(m, Loihi) and field == 'srmKernel' then
         neurons[mname == '' and 'self' or mname] = neuronSummary(m)
      end
   end
   if opts.order then
      local ordered = {}
      for i, name in ipairs(opts.order) do
         ordered[i] = byName[name] or fail(fname, "opts.order names '" .. L.valueStr(name) .. "', which is not a "
            .. 'synaptic layer or delay of the network')
      end
      layers = ordered
   end
   if #layers == 0 then fail(fname, 'the network has no synaptic layers or delays to export') end
   local mok, merr = pcall(utils.mkdir, dir)
   if not mok then fail(fname, tostring(merr)) end
   local summary = {format = 'slayer-lua loihi export 1', neurons = neurons, layers = jsonArray({})}
   local files = {}
   for i, entry in ipairs(layers) do
      local m = entry.module
      local info = {name = entry.name, type = entry.type}
      if entry.type == 'delay' then
         info.file = entry.name .. '.txt'
         info.shape = m.delay:shape()
         files[i] = integerFile(dir .. '/' .. info.file, A.noGrad(function() return m.delay:detach():floor() end),
            entry.name)
      else
         info.file = entry.name .. '.txt'
         nn.updateWeightNorm(m) -- (a weight-normalised layer's weight after the last step)
         local w = A.noGrad(function()
            return m.preHookFx and m.preHookFx(m.weight) or m.weight
         end)
         info.weightShape = w:shape()
         info.quantized = m.preHookFx ~= nil
         if entry.type == 'dense' then
            info.inFeatures = {m.kw, m.kh, m.inChannels}
            info.outFeatures = m.outFeatures
         else
            if m.inChannels then info.inChannels, info.outChannels, info.groups = m.inChannels, m.outChannels, m.groups end
            info.kernelSize = {m.kh, m.kw}
            info.stride = {m.sh, m.sw}
            info.padding = {m.ph, m.pw}
            info.dilation = {m.dh, m.dw}
         end
         files[i] = integerFile(dir .. '/' .. info.file, w, entry.name .. '.weight')
      end
      summary.layers[i] = info
   end
   files[#files + 1] = {dir .. '/network.json', jsonEncode(summary) .. '\n'}
   utils.writeFiles(files, 'export')
   return summary
end

Layer._requireColon(Loihi, 'snn.loihi', {'calculateSrmKernel', 'calculateRefKernel', 'spikeLoihi', 'spikeLoihiFull',
   'getVoltage', 'poolWeight', 'dense', 'conv', 'convTranspose'})

return Loihi
