--[[
slayer.synapse -- synaptic layers applied independently at every time bin
(the reference's _denseLayer, _convLayer, _poolLayer, _convTransposeLayer,
_unpoolLayer, _dropoutLayer and replicateInTime; SPEC.md section 9).

Weights are initialised as PyTorch's Conv3d/ConvTranspose3d default
(uniform on [-1/sqrt(fanIn), 1/sqrt(fanIn)], fanIn from weight dimension 1
times the kernel area -- for convTranspose that is outChannels/groups) and
multiplied by weightScale.  An optional preHookFx(weight) is applied at
every forward; the op and its input gradient use the hooked weight and the
weight gradient flows back through the hook.

Pool and unpool use the fixed weight 1.1*theta and the reference's folded
geometry (channels stacked along the height); geometries where a window
would mix channels, which the reference computes wrongly or crashes on,
raise an error here.  snn.layer methods supply the reference's defaults.
]]
local ffi = require 'ffi'
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'
local nn = require 'slayer.nn'

local C = L.C
local S = {}

local function fail(fname, msg) L.raise(fname .. ': ' .. msg) end
local function cfail() L.raise(L.lastError()) end

-- a size, stride or count: a whole number in [lo (default 1), 2^31 - 1] (what C's int32 holds)
local function isInt(v, lo) return L.isWhole(v, lo or 1, 2 ^ 31 - 1) end

local function valueStrs(list)
   local out = {}
   for i = 1, #list do out[i] = L.valueStr(list[i]) end
   return out
end

-- int or {h, w} -> h, w
local function pair(v, name, fname, lo)
   if isInt(v, lo) then return v, v end
   if type(v) == 'table' and #v == 2 and isInt(v[1], lo) and isInt(v[2], lo) then return v[1], v[2] end
   fail(fname, 'expected ' .. name .. ' as an integer or {h, w}' .. (lo == 0 and ' (>= 0)' or ' (>= 1)')
      .. ', got ' .. (type(v) == 'table' and not T.isTensor(v) and ('{' .. table.concat(valueStrs(v), ', ') .. '}')
         or L.valueStr(v)))
end

local function initWeight(shape, fanIn, weightScale, fname)
   if not L.isFinite(weightScale) then
      fail(fname, 'expected weightScale as a finite number, got ' .. L.valueStr(weightScale))
   end
   local bound = 1 / math.sqrt(fanIn)
   local w = T._rand(shape, 0, fname) * (2 * bound) - bound
   if weightScale ~= 1 then w = w * weightScale end
   return w:detach():requiresGrad(true)
end

local function check5D(x, fname)
   if not T.isTensor(x) or x:dim() ~= 5 then
      fail(fname, 'expected a 5-D (N, C, H, W, T) tensor, got ' .. (T.isTensor(x) and T.shapeStr(x) or type(x)))
   end
end

local function hooked(self, fname)
   -- a weight-normalised layer whose forward was called directly, not
   -- through a call of the module (nn.weightNorm): v * g / ||v|| here
   local wn = rawget(self, '_weightNorm')
   if wn and wn.depth == 0 then self.weight = wn.compute(self) end
   local w = self.weight
   if self.preHookFx then
      w = self.preHookFx(w)
      if not T.isTensor(w) or T.shapeStr(w) ~= T.shapeStr(self.weight) then
         fail(fname, 'preHookFx must return a tensor of the weight shape ' .. T.shapeStr(self.weight))
      end
   end
   return w
end

local function params(kh, kw, sh, sw, ph, pw, dh, dw, groups, sparse, layer)
   return ffi.new('sl_conv_params', {kh, kw, sh, sw, ph, pw, dh, dw, groups, sparse or 0, layer or 0})
end

-- dense layers are numbered: the GPU remembers each one's input density
local layers = 0

local function outSize(n, k, s, p, d) return math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1 end

---------------------------------------------------------------------------
-- the per-time-bin convolution, with autograd
---------------------------------------------------------------------------

local function rawConv(x, w, p, outShape)
   local out = T._emptyOf(outShape, T._deviceNum(x.device), 'conv')
   if C.sl_conv_forward(out._c, x._c, w._c, p) ~= 0 then cfail() end
   return out
end

local function rawConvInput(g, w, p, inShape, dev)
   local gin = T._emptyOf(inShape, T._deviceNum(dev), 'conv')
   if C.sl_conv_backward_input(gin._c, T._contig(g)._c, w._c, p) ~= 0 then cfail() end
   return gin
end

local function rawConvWeight(g, x, p, wShape, dev)
   local gw = T._emptyOf(wShape, T._deviceNum(dev), 'conv')
   if C.sl_conv_backward_weight(gw._c, T._contig(g)._c, x._c, p) ~= 0 then cfail() end
   return gw
end

--- y = conv(x, w) per time bin; outShape computed by the caller.
local function convOp(x, w, p, outShape)
   local xc, wc = T._contig(x), T._contig(w)
   local out = rawConv(xc, wc, p, outShape)
   if A.needed(x, w) then
      local xd, wd = xc:detach(), wc:detach()
      local inShape, wShape, dev = x:shape(), w:shape(), x.device
      A.record(out, {x, w}, function(g)
         return x._rg and rawConvInput(g, wd, p, inShape, dev) or nil,
            w._rg and rawConvWeight(g, xd, p, wShape, dev) or nil
      end, 2)
   end
   return out
end

-- dense or conv with a sparse input (spike trains): scatter the weight rows
-- (dense) or the kernel (conv) per spike; csr lists x's non-zeros
local function sparseOp(fname, x, w, csr, p, outShape)
   local conv = fname == 'conv'
   local O = w:size(1)
   local wT = T._contig(T._contig(w:detach()):view({O, w:numel() / O}):transpose(1, 2))
   local out = T._emptyOf(outShape, 0, fname)
   local xc = T._contig(x)
   local rc
   if conv then rc = C.sl_conv_sparse_forward(out._c, xc._c, csr, wT._c, p)
   else rc = C.sl_dense_sparse_forward(out._c, csr, wT._c) end
   T._release(wT)
   if rc ~= 0 then cfail() end
   if not A.needed(x, w) then
      C.sl_sparse_rows_free(ffi.gc(csr, nil)) -- no backward will read it
   else
      -- conv's weight gradient reads the dense input too; dense's only the list
      local wd, xd = T._contig(w:detach()), conv and xc:detach() or nil
      local inShape, wShape = x:shape(), w:shape()
      A.record(out, {x, w}, function(g)
         g = T._contig(g)
         local gx, gw
         if x._rg then gx = rawConvInput(g, wd, p, inShape, 'cpu') end
         if w._rg then
            gw = T._emptyOf(wShape, 0, fname)
            local grc
            if conv then grc = C.sl_conv_sparse_weight_grad(gw._c, xd._c, csr, g._c, p)
            else grc = C.sl_dense_sparse_weight_grad(gw._c, csr, g._c) end
            if grc ~= 0 then cfail() end
         end
         return gx, gw
      end, 2)
   end
   return out
end

---------------------------------------------------------------------------
-- dense
---------------------------------------------------------------------------

local Dense = nn.class('snn.dense', nn.Module)
local csrOut = ffi.new('sl_sparse_rows *[1]')
S.Dense = Dense

--- The sparse-spike path of dense is taken automatically when the layer
-- has at least sparseMinOut outputs and less than sparseThreshold of the
-- input is non-zero (bench/synapse.lua --sweep: at 2312 -> 512 the sparse
-- forward + weight gradient wins beyond 20 % density, at 64 outputs up to
-- about 10 %; with few outputs the GEMM is cheap and the scan for non-zeros
-- does not pay).  On the GPU the forward takes cuBLAS (the event list's
-- forward lost to it on an H200 at batch 12 and 128), and the weight
-- gradient follows the layer's previous input (at most 5 % non-zero, and at
-- least 32 outputs and 512 inputs: events), so the choice never waits for
-- the device; dense.sparse = true/false forces a path on both devices.
S.sparseThreshold = 0.10
S.sparseMinOut = 32
--- Conv (groups 1) takes its sparse-spike path below this fraction of
-- non-zeros (set conv.sparse = true/false to force a path).
S.convSparseThreshold = 0.05

function Dense:__init(inFeatures, outFeatures, weightScale, preHookFx)
   nn.Module.__init(self)
   local fname = 'dense'
   local Cn, kh, kw
   if isInt(inFeatures) then
      Cn, kh, kw = inFeatures, 1, 1
   elseif type(inFeatures) == 'table' and (#inFeatures == 2 or #inFeatures == 3) then
      for i = 1, #inFeatures do
         if not isInt(inFeatures[i]) then fail(fname, 'inFeatures entries must be positive integers') end
      end
      kw, kh, Cn = inFeatures[1], inFeatures[2], inFeatures[3] or 1
   else
      fail(fname, 'expected inFeatures as an integer, {W, H} or {W, H, C}, got ' .. L.valueStr(inFeatures))
   end
   if not isInt(outFeatures) then fail(fname, 'expected outFeatures as a positive integer, got ' .. L.valueStr(outFeatures)) end
   if preHookFx ~= nil and type(preHookFx) ~= 'function' then fail(fname, 'preHookFx must be a function') end
   self.inChannels, self.kh, self.kw, self.outFeatures = Cn, kh, kw, outFeatures
   self.weight = initWeight({outFeatures, Cn, kh, kw, 1}, Cn * kh * kw, weightScale or 1, 'dense')
   self.preHookFx = preHookFx
   self.sparse = 'auto' -- true/false forces the sparse or the GEMM path
   layers = layers + 1
   self._layer = layers
end

function Dense:forward(x)
   local fname = 'dense'
   check5D(x, fname)
   local N, Cn, H, W, Tn = unpack(x:shape())
   if Cn ~= self.inChannels or H < self.kh or W < self.kw then
      fail(fname, 'expected input [N, ' .. self.inChannels .. ', ' .. self.kh .. ', ' .. self.kw .. ', T], got '
         .. T.shapeStr(x))
   end
   local w = hooked(self, fname)
   if x.device ~= w.device then fail(fname, 'input on ' .. x.device .. ', weight on ' .. w.device) end
   local OH, OW = H - self.kh + 1, W - self.kw + 1
   local outShape = {N, self.outFeatures, OH, OW, Tn}
   local p = params(self.kh, self.kw, 1, 1, 0, 0, 1, 1, 1,
      self.sparse == true and 1 or self.sparse == false and -1 or 0, self._layer)
   if OH == 1 and OW == 1 and x.device == 'cpu' and self.sparse ~= false and x:numel() > 0
      and (self.sparse == true or self.outFeatures >= S.sparseMinOut) then
      local xc = T._contig(x)
      -- the count of non-zeros decides, and the list is only built if sparse
      if C.sl_sparse_rows_new(csrOut, xc._c, self.sparse == true and 2 or S.sparseThreshold) ~= 0 then cfail() end
      local csr = csrOut[0]
      if csr ~= nil then
         return sparseOp(fname, x, w, ffi.gc(csr, C.sl_sparse_rows_free), p, outShape)
      end
   end
   return convOp(x, w, p, outShape)
end

function Dense:__tostring()
   return string.format('dense(%dx%dx%d -> %d)', self.kw, self.kh, self.inChannels, self.outFeatures)
end

---------------------------------------------------------------------------
-- conv
---------------------------------------------------------------------------

local Conv = nn.class('snn.conv', nn.Module)
S.Conv = Conv

local function convInit(self, fname, inChannels, outChannels, kernelSize, stride, padding, dilation, groups)
   if not isInt(inChannels) then fail(fname, 'expected inChannels as a positive integer, got ' .. L.valueStr(inChannels)) end
   if not isInt(outChannels) then fail(fname, 'expected outChannels as a positive integer, got ' .. L.valueStr(outChannels)) end
   groups = groups or 1
   if not isInt(groups) or inChannels % groups ~= 0 or outChannels % groups ~= 0 then
      fail(fname, 'groups ' .. L.valueStr(groups) .. ' must divide inChannels ' .. inChannels .. ' and outChannels '
         .. outChannels)
   end
   self.inChannels, self.outChannels, self.groups = inChannels, outChannels, groups
   self.kh, self.kw = pair(kernelSize, 'kernelSize', fname, 1)
   self.sh, self.sw = pair(stride or 1, 'stride', fname, 1)
   self.ph, self.pw = pair(padding or 0, 'padding', fname, 0)
   self.dh, self.dw = pair(dilation or 1, 'dilation', fname, 1)
end

function Conv:__init(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, weightScale, preHookFx)
   nn.Module.__init(self)
   convInit(self, 'conv', inChannels, outChannels, kernelSize, stride, padding, dilation, groups)
   if preHookFx ~= nil and type(preHookFx) ~= 'function' then fail('conv', 'preHookFx must be a function') end
   local cin = inChannels / self.groups
   self.weight = initWeight({outChannels, cin, self.kh, self.kw, 1}, cin * self.kh * self.kw, weightScale or 1,
      'conv')
   self.preHookFx = preHookFx
end

-- (conv.sparse = false also sends a GPU conv through the columns and
-- cuBLAS instead of the direct loops)
function Conv:_params()
   return params(self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw, self.groups,
      self.sparse == false and -1 or 0)
end

function Conv:forward(x)
   local fname = 'conv'
   check5D(x, fname)
   local N, Cn, H, W, Tn = unpack(x:shape())
   if Cn ~= self.inChannels then
      fail(fname, 'expected ' .. self.inChannels .. ' input channels, got ' .. T.shapeStr(x))
   end
   local OH = outSize(H, self.kh, self.sh, self.ph, self.dh)
   local OW = outSize(W, self.kw, self.sw, self.pw, self.dw)
   if OH < 1 or OW < 1 then
      fail(fname, string.format('kernel %dx%d (dilation %dx%d) is larger than the padded input %dx%d of %s',
         self.kh, self.kw, self.dh, self.dw, H + 2 * self.ph, W + 2 * self.pw, T.shapeStr(x)))
   end
   local w = hooked(self, fname)
   if x.device ~= w.device then fail(fname, 'input on ' .. x.device .. ', weight on ' .. w.device) end
   local outShape = {N, self.outChannels, OH, OW, Tn}
   if x.device == 'cpu' and self.groups == 1 and self.sparse ~= false and x:numel() > 0 then
      local xc = T._contig(x)
      if C.sl_sparse_rows_new(csrOut, xc._c, self.sparse == true and 2 or S.convSparseThreshold) ~= 0 then cfail() end
      local csr = csrOut[0]
      if csr ~= nil then
         return sparseOp(fname, x, w, ffi.gc(csr, C.sl_sparse_rows_free), self:_params(), outShape)
      end
   end
   return convOp(x, w, self:_params(), outShape)
end

function Conv:__tostring()
   return string.format('conv(%d -> %d, %dx%d, stride %dx%d, padding %dx%d, dilation %dx%d, groups %d)',
      self.inChannels, self.outChannels, self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw,
      self.groups)
end

---------------------------------------------------------------------------
-- convTranspose: the adjoint of conv
---------------------------------------------------------------------------

local ConvTranspose = nn.class('snn.convTranspose', nn.Module)
S.ConvTranspose = ConvTranspose

function ConvTranspose:__init(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, weightScale,
                              preHookFx)
   nn.Module.__init(self)
   convInit(self, 'convTranspose', inChannels, outChannels, kernelSize, stride, padding, dilation, groups)
   if preHookFx ~= nil and type(preHookFx) ~= 'function' then fail('convTranspose', 'preHookFx must be a function') end
   local cout = outChannels / self.groups
   -- PyTorch's fan-in for ConvTranspose weights is taken from dimension 1
   self.weight = initWeight({inChannels, cout, self.kh, self.kw, 1}, cout * self.kh * self.kw, weightScale or 1,
      'convTranspose')
   self.preHookFx = preHookFx
end

ConvTranspose._params = Conv._params

function ConvTranspose:forward(x)
   local fname = 'convTranspose'
   check5D(x, fname)
   local N, Cn, H, W, Tn = unpack(x:shape())
   if Cn ~= self.inChannels then
      fail(fname, 'expected ' .. self.inChannels .. ' input channels, got ' .. T.shapeStr(x))
   end
   local OH = (H - 1) * self.sh - 2 * self.ph + self.dh * (self.kh - 1) + 1
   local OW = (W - 1) * self.sw - 2 * self.pw + self.dw * (self.kw - 1) + 1
   if OH < 1 or OW < 1 then
      fail(fname, 'padding ' .. self.ph .. 'x' .. self.pw .. ' leaves no output for input ' .. T.shapeStr(x))
   end
   local w = T._contig(hooked(self, fname))
   local p = self:_params()
   local xc = T._contig(x)
   local outShape = {N, self.outChannels, OH, OW, Tn}
   local out = rawConvInput(xc, w, p, outShape, x.device)
   if A.needed(x, w) then
      local xd, wd = xc:detach(), w:detach()
      local inShape, wShape, dev = x:shape(), w:shape(), x.device
      A.record(out, {x, w}, function(g)
         g = T._contig(g)
         return x._rg and rawConv(g, wd, p, inShape) or nil,
            w._rg and rawConvWeight(xd, g, p, wShape, dev) or nil
      end, 2)
   end
   return out
end

function ConvTranspose:__tostring()
   return string.format('convTranspose(%d -> %d, %dx%d, stride %dx%d, padding %dx%d, dilation %dx%d, groups %d)',
      self.inChannels, self.outChannels, self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw,
      self.groups)
end

---------------------------------------------------------------------------
-- pool and unpool (folded over channels, as the reference)
---------------------------------------------------------------------------

-- The reference folds the channels into the height and pools (or unpools)
-- that single tall channel.  Per channel that equals pooling each channel
-- on its own only when every channel's windows start at its first row:
-- no padding on the folded axis, per * sh == Hp (output rows per channel
-- times the stride covers exactly the channel's Hp rows) and the last
-- window ends inside the channel.  Otherwise the reference mixes or shifts
-- channels (or fails to reshape): raise.  One channel is always its own.
local function checkFold(fname, Cn, Hp, Rf, kh, sh, ph, dh, shapeText)
   if Rf < 1 or Rf % Cn ~= 0 then
      fail(fname, string.format('kernel %d, stride %d, padding %d, dilation %d on the %d folded rows of %s give %d '
         .. 'output rows, not a multiple of the %d channels (the reference cannot reshape this)', kh, sh, ph, dh,
         Cn * Hp, shapeText, Rf, Cn))
   end
   if Cn == 1 then return end
   local per = Rf / Cn
   if ph ~= 0 or per * sh ~= Hp or (per - 1) * sh + dh * (kh - 1) >= Hp then
      fail(fname, string.format('kernel %d, stride %d, padding %d, dilation %d on %d rows per channel with %d '
         .. 'channels would mix or shift channels (the reference folds channels into the height); use a kernel '
         .. 'and stride that divide the padded height, without padding', kh, sh, ph, dh, Hp, Cn))
   end
end

local function poolArgs(self, fname, kernelSize, stride, padding, dilation, poolWeight, preHookFx)
   self.kh, self.kw = pair(kernelSize, 'kernelSize', fname, 1)
   if stride == nil then self.sh, self.sw = self.kh, self.kw
   else self.sh, self.sw = pair(stride, 'stride', fname, 1) end
   self.ph, self.pw = pair(padding or 0, 'padding', fname, 0)
   self.dh, self.dw = pair(dilation or 1, 'dilation', fname, 1)
   if type(poolWeight) ~= 'number' then fail(fname, 'expected the pool weight (1.1 * theta) as a number') end
   if preHookFx ~= nil and type(preHookFx) ~= 'function' then fail(fname, 'preHookFx must be a function') end
   self.weight = T._emptyOf({1, 1, self.kh, self.kw, 1}, 0, fname):fill(poolWeight)
   self.preHookFx = preHookFx
end

-- sl_fold_pool(pooled, full, ...): adjoint 0 pools full into pooled, 1 spreads
-- pooled back over full; pool pads an odd size, unpool does not
local function foldOp(pooled, full, w, p, adjoint, oddPad)
   if C.sl_fold_pool(pooled._c, full._c, T._contig(w)._c, p, adjoint, oddPad) ~= 0 then cfail() end
end

-- the shared tail of pool and unpool (its adjoint): x to a new tensor of
-- outShape, recording the gradient (the other direction of the same fold)
local function foldModule(self, fname, x, outShape, unpool)
   local w = hooked(self, fname):detach()
   if x.device ~= w.device then fail(fname, 'input on ' .. x.device .. ', weight on ' .. w.device) end
   local p, oddPad = self:_params(), unpool and 0 or 1
   local dev = T._deviceNum(x.device)
   local xc = T._contig(x)
   local out = T._emptyOf(outShape, dev, fname)
   if unpool then foldOp(xc, out, w, p, 1, oddPad) else foldOp(out, xc, w, p, 0, oddPad) end
   if A.needed(x) then
      local inShape = x:shape()
      A.record(out, {x}, function(g)
         local gin, gc = T._emptyOf(inShape, dev, fname), T._contig(g)
         if unpool then foldOp(gin, gc, w, p, 0, oddPad) else foldOp(gc, gin, w, p, 1, oddPad) end
         return gin
      end, 1)
   end
   return out
end

local Pool = nn.class('snn.pool', nn.Module)
S.Pool = Pool

function Pool:__init(kernelSize, stride, padding, dilation, poolWeight, preHookFx)
   nn.Module.__init(self)
   poolArgs(self, 'pool', kernelSize, stride, padding, dilation, poolWeight, preHookFx)
end

Pool._params = function(self)
   return params(self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw, 1)
end

function Pool:forward(x)
   local fname = 'pool'
   check5D(x, fname)
   local N, Cn, H, W, Tn = unpack(x:shape())
   local Hp = H % self.kh ~= 0 and H + H % self.kh or H
   local Wp = W % self.kw ~= 0 and W + W % self.kw or W
   local Rf = outSize(Cn * Hp, self.kh, self.sh, self.ph, self.dh)
   local Q = outSize(Wp, self.kw, self.sw, self.pw, self.dw)
   if Q < 1 then fail(fname, 'kernel width ' .. self.kw .. ' is larger than the padded input of ' .. T.shapeStr(x)) end
   checkFold(fname, Cn, Hp, Rf, self.kh, self.sh, self.ph, self.dh, T.shapeStr(x))
   return foldModule(self, fname, x, {N, Cn, Rf / Cn, Q, Tn}, false)
end

function Pool:__tostring()
   return string.format('pool(%dx%d, stride %dx%d, weight %g)', self.kh, self.kw, self.sh, self.sw,
      self.weight:totable()[1])
end

local Unpool = nn.class('snn.unpool', nn.Module)
S.Unpool = Unpool

function Unpool:__init(kernelSize, stride, padding, dilation, poolWeight, preHookFx)
   nn.Module.__init(self)
   poolArgs(self, 'unpool', kernelSize, stride, padding, dilation, poolWeight, preHookFx)
end

Unpool._params = Pool._params

function Unpool:forward(x)
   local fname = 'unpool'
   check5D(x, fname)
   local N, Cn, H, W, Tn = unpack(x:shape())
   local Hf = (Cn * H - 1) * self.sh - 2 * self.ph + self.dh * (self.kh - 1) + 1
   local Wo = (W - 1) * self.sw - 2 * self.pw + self.dw * (self.kw - 1) + 1
   if Hf < 1 or Wo < 1 or Hf % Cn ~= 0 then
      fail(fname, string.format('kernel %d, stride %d, padding %d, dilation %d on the folded %s give %d rows, not '
         .. 'a multiple of the %d channels', self.kh, self.sh, self.ph, self.dh, T.shapeStr(x), Hf, Cn))
   end
   local Ho = Hf / Cn
   checkFold(fname, Cn, Ho, Cn * H, self.kh, self.sh, self.ph, self.dh, T.shapeStr(x))
   return foldModule(self, fname, x, {N, Cn, Ho, Wo, Tn}, true)
end

function Unpool:__tostring()
   return string.format('unpool(%dx%d, stride %dx%d, weight %g)', self.kh, self.kw, self.sh, self.sw,
      self.weight:totable()[1])
end

---------------------------------------------------------------------------
-- dropout and replicateInTime
---------------------------------------------------------------------------

local Dropout = nn.class('snn.dropout', nn.Module)
S.Dropout = Dropout

--- Each neuron (n, c, h, w) is dropped for all time bins together with
-- probability p and survivors are scaled by 1/(1-p); identity in evaluation
-- mode.  `inplace` is accepted for the reference's signature; the result is
-- always a new tensor.
function Dropout:__init(p, inplace)
   nn.Module.__init(self)
   p = p or 0.5
   if type(p) ~= 'number' or not (p >= 0 and p <= 1) then fail('dropout', 'expected p in [0, 1], got ' .. L.valueStr(p)) end
   self.p = p
   self.inplace = inplace and true or false
end

function Dropout:forward(x)
   check5D(x, 'dropout')
   if not self.training or self.p == 0 then return x end
   local s = x:shape()
   if self.p == 1 then return x * 0 end
   local mask = T.bernoulli({s[1], s[2], s[3], s[4], 1}, 1 - self.p, x.device) * (1 / (1 - self.p))
   return x * mask
end

function Dropout:__tostring() return string.format('dropout(p = %g)', self.p) end

--- (N, C, H, W) -> (N, C, H, W, Ns): the frame copied into every bin.
function S.replicateInTime(input, Ns, mode)
   local fname = 'replicateInTime'
   mode = mode or 'nearest'
   if mode ~= 'nearest' then fail(fname, "only mode 'nearest' is supported, got '" .. L.valueStr(mode) .. "'") end
   if not T.isTensor(input) or input:dim() ~= 4 then
      fail(fname, 'expected a 4-D (N, C, H, W) tensor, got ' .. (T.isTensor(input) and T.shapeStr(input) or type(input)))
   end
   if not isInt(Ns) then fail(fname, 'expected the number of time bins as a positive integer, got ' .. L.valueStr(Ns)) end
   local s = input:shape()
   s[5] = Ns
   return input:unsqueeze(5):expand(s):contiguous()
end

return S
