--[[
snn.auto -- the reference's auto helpers (src/auto, SPEC.md section 18): a
Loihi network generated from the parameter file's `layer` list, a dataset
wrapper that bins event lists, and an assistant that runs the training and
testing loops.

    local net   = snn.auto.loihi.Network(netParams)            -- blocks from netParams.layer
    local train = snn.auto.dataset(events, net)                 -- events:get(i) -> ev, label
    local boss  = snn.auto.assistant(net, snn.data.Loader(train, {batchSize = 12}), testLoader,
                     function(out, target, label) return err:numSpikes(out, target) end,
                     snn.optim.Nadam(net:parameters(), {lr = 0.01, amsgrad = true}), {stats = stats})
    boss:train(epoch); boss:test(epoch); stats:update()

Layer entries (`dim`): `WxHxC` or `WxH` (the input, first), an integer n
(dense; flattened first when H or W is not 1), `NcK` (conv, padding K//2 by
default; 1-D kernels {1, K} when H = 1), `Ka` (pool), `Navg` (average over
groups of outputs); optional keys stride, padding, dilation, groups, wScale
(100), delay (false), maxDelay (62), and a `neuron` section of its own.
Every weighted block is spikeLoihi(op(x)) -> delayShift(., 1) -> optional
learnable per-channel delay, as the reference.

Differences: labels are 1-based (as getClass); the reference's genModel and
loadModel write HDF5, which slayer-lua does not read or write: use
snn.loihi.export (integer weights, floored delays, a JSON summary) and
Module:save/load.  With weightNorm, snn.loihi.export writes the weight
v * g / ||v|| of the last optimizer step (snn.updateWeightNorm).
]]
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'
local nn = require 'slayer.nn'

local C = L.C

local function fail(fname, msg) L.raise(fname .. ': ' .. msg) end

local M = {loihi = {}}

local function Loihi() return require 'slayer.loihi' end

-- the reference's trailing keyword arguments, given either as one options
-- table or positionally in its order.  One plain table (no metatable) is
-- the options when its keys are all known (names and the extra keys in
-- more); otherwise it is an error naming the key, unless it can be the
-- first positional argument (isFirst says so: a scheduler table).
local function options(fname, names, more, isFirst, ...)
   local args, n = {...}, select('#', ...)
   while n > 0 and args[n] == nil do n = n - 1 end -- (trailing nils: not given)
   if n == 0 then return {} end
   local first = args[1]
   if n == 1 and type(first) == 'table' and getmetatable(first) == nil then
      local known = {}
      for _, k in ipairs(names) do known[k] = true end
      for _, k in ipairs(more) do known[k] = true end
      local unknown
      for k in pairs(first) do
         if not known[k] then unknown = unknown or tostring(k) end
      end
      if not unknown then return first end
      if not (isFirst and isFirst(first)) then fail(fname, "unknown option '" .. unknown .. "'") end
   end
   if n > #names then fail(fname, 'expected at most ' .. #names .. ' arguments after the required ones, got ' .. n) end
   local o = {}
   for i = 1, n do o[names[i]] = args[i] end
   return o
end

local function digits(s)
   local out = {}
   for d in tostring(s):gmatch('%d+') do out[#out + 1] = tonumber(d) end
   return out
end

---------------------------------------------------------------------------
-- blocks
---------------------------------------------------------------------------

-- spikeLoihi(op(x)), the chip's one-tick axonal delay, then the optional
-- learnable delay; with countLog also the spike count
local function weightedForward(self, spike)
   local sl = self._slayer
   spike = sl:delayShift(sl:spikeLoihi(self.weightOp(spike)), 1)
   if self.delayOp then spike = self.delayOp(spike) end
   if self.countLog then return spike, spike:sum() end
   return spike
end

local DenseBlock = nn.class('snn.auto.denseBlock', nn.Module)
M.loihi.denseBlock = DenseBlock

-- the reference's weightNorm flag: torch.nn.utils.weight_norm of the weight
-- op (nn.weightNorm), so the parameters are weight_g and weight_v
local function normalised(op, weightNorm)
   if weightNorm == true then nn.weightNorm(op) end
   return op, weightNorm == true
end

-- the blocks' preHookFx: the reference's default quantises in steps of 2;
-- false for none
local function hookOr(preHookFx)
   if preHookFx == nil then return Loihi().quantizeStep2 end
   return preHookFx
end

function DenseBlock:__init(slayer, inFeatures, outFeatures, weightScale, preHookFx, weightNorm, delay, maxDelay,
                           countLog)
   nn.Module.__init(self)
   self._slayer = slayer
   self.weightOp, self.weightNorm = normalised(slayer:dense(inFeatures, outFeatures, weightScale or 100,
      hookOr(preHookFx)), weightNorm)
   if delay then self.delayOp = slayer:delay(outFeatures) end
   self.countLog, self.gradLog, self.maxDelay = countLog or false, true, maxDelay or 62
   self.paramsDict = {inFeatures = inFeatures, outFeatures = outFeatures}
end
DenseBlock.forward = weightedForward

local ConvBlock = nn.class('snn.auto.convBlock', nn.Module)
M.loihi.convBlock = ConvBlock

function ConvBlock:__init(slayer, inChannels, outChannels, kernelSize, stride, padding, dilation, groups, weightScale,
                          preHookFx, weightNorm, delay, maxDelay, countLog)
   nn.Module.__init(self)
   self._slayer = slayer
   self.weightOp, self.weightNorm = normalised(slayer:conv(inChannels, outChannels, kernelSize, stride, padding,
      dilation, groups, weightScale or 100, hookOr(preHookFx)), weightNorm)
   if delay then self.delayOp = slayer:delay(outChannels) end
   self.countLog, self.gradLog, self.maxDelay = countLog or false, true, maxDelay or 62
   self.paramsDict = {inChannels = inChannels, outChannels = outChannels, kernelSize = kernelSize,
      stride = stride or 1, padding = padding or 0, dilation = dilation or 1, groups = groups or 1}
end
ConvBlock.forward = weightedForward

local PoolBlock = nn.class('snn.auto.poolBlock', nn.Module)
M.loihi.poolBlock = PoolBlock

function PoolBlock:__init(slayer, kernelSize, stride, padding, dilation, countLog)
   nn.Module.__init(self)
   self._slayer = slayer
   self.weightOp = slayer:pool(kernelSize, stride, padding, dilation)
   self.countLog, self.gradLog = countLog or false, false
   self.paramsDict = {kernelSize = kernelSize, stride = stride or kernelSize, padding = padding or 0,
      dilation = dilation or 1}
end

function PoolBlock:forward(spike)
   local sl = self._slayer
   spike = sl:delayShift(sl:spikeLoihi(self.weightOp(spike)), 1)
   if self.countLog then return spike, nil end -- pool blocks are not counted
   return spike
end

local FlattenBlock = nn.class('snn.auto.flattenBlock', nn.Module)
M.loihi.flattenBlock = FlattenBlock

function FlattenBlock:__init(countLog)
   nn.Module.__init(self)
   self.countLog, self.gradLog, self.paramsDict = countLog or false, false, {}
end

function FlattenBlock:forward(spike)
   local out = spike:reshape({spike:size(1), -1, 1, 1, spike:size(5)})
   if self.countLog then return out, nil end
   return out
end

local AverageBlock = nn.class('snn.auto.averageBlock', nn.Module)
M.loihi.averageBlock = AverageBlock

function AverageBlock:__init(nOutputs, countLog)
   nn.Module.__init(self)
   self.nOutputs, self.countLog, self.gradLog, self.paramsDict = nOutputs, countLog or false, false, {}
end

-- (N, C, 1, 1, T) -> mean over groups of C / nOutputs consecutive outputs
function AverageBlock:forward(spike)
   local N, Tn = spike:size(1), spike:size(5)
   local out = spike:reshape({N, self.nOutputs, -1, 1, Tn}):mean(3)
   if self.countLog then return out, nil end
   return out
end

---------------------------------------------------------------------------
-- Network
---------------------------------------------------------------------------

local function layerType(dim, fname)
   if type(dim) == 'number' then return 'dense' end
   if type(dim) ~= 'string' then fail(fname, 'a layer dim must be an integer or a string, got ' .. type(dim)) end
   if dim:find('c', 1, true) then return 'conv' end
   if dim:find('avg', 1, true) then return 'average' end
   if dim:find('a', 1, true) then return 'pool' end
   if dim:find('x', 1, true) then return 'input' end
   fail(fname, "could not parse the layer description '" .. dim .. "'")
end

-- the reference's console table
local function cell(v, w) return v == nil and string.rep(' ', w) or string.format('%' .. w .. 'd', v) end
local function tableRow(typeStr, W, H, Cn, ker, str, pad, delay, numParams)
   return '|' .. string.format('%-10s', typeStr) .. '|' .. cell(W, 5) .. '|' .. cell(H, 5) .. '|' .. cell(Cn, 5)
      .. '|' .. cell(ker, 5) .. '|' .. cell(str, 5) .. '|' .. cell(pad, 5) .. '|'
      .. string.format('%-5s', delay and 'True' or 'False') .. '|' .. cell(numParams, 10) .. '|'
end
local TABLE_HEADER = '|   Type   |  W  |  H  |  C  | ker | str | pad |delay|  params  |'

local function countParams(m)
   local n = 0
   for _, p in ipairs(m:parameters()) do n = n + p:numel() end
   return n
end

local Network = nn.class('snn.auto.loihi.Network', nn.Module)
M.loihi.Network = Network

--- Network(netParams[, opts]): opts.preHookFx (default: quantise in steps
-- of 2; false for none), opts.weightNorm (weight normalisation of the dense
-- and conv blocks, snn.weightNorm), opts.countLog, opts.verbose (default
-- true: print the simulation and neuron sections and the layer table); or
-- the reference's positional Network(netParams, preHookFx, weightNorm, countLog).
function Network:__init(netParams, ...)
   nn.Module.__init(self)
   local fname = 'auto.loihi.Network'
   local opts = options(fname, {'preHookFx', 'weightNorm', 'countLog'}, {'verbose'}, nil, ...)
   if type(netParams) ~= 'table' then fail(fname, 'expected the parameter tree, got ' .. type(netParams)) end
   for _, k in ipairs({'simulation', 'neuron', 'layer'}) do
      if type(netParams[k]) ~= 'table' then fail(fname, "the parameter tree has no '" .. k .. "' section") end
   end
   local hook = opts.preHookFx
   if hook == nil then hook = Loihi().quantizeStep2 end
   if hook ~= false and type(hook) ~= 'function' then fail(fname, 'preHookFx must be a function or false') end
   self._netParams = netParams
   self.countLog = opts.countLog == true
   self.weightNorm = opts.weightNorm == true
   self.slayer = Loihi()(netParams.neuron, netParams.simulation)
   self.layerDims = {}
   self.layerSlayers = {}
   self.blocks = {}
   local lines = {TABLE_HEADER}
   local dims -- {C, H, W}
   local is1D = false
   local function add(b) self.blocks[#self.blocks + 1] = b; return b end
   for li, layer in ipairs(netParams.layer) do
      if type(layer) ~= 'table' then fail(fname, 'layer ' .. li .. ' is not a table') end
      local kind = layerType(layer.dim, fname)
      local sl = self.slayer
      if layer.neuron ~= nil then
         sl = Loihi()(layer.neuron, netParams.simulation)
         -- kept where the module walk finds it, so that :to(device) moves its kernels
         self.layerSlayers[#self.layerSlayers + 1] = sl
      end
      local function opt(k, default) if layer[k] == nil then return default end return layer[k] end
      if dims == nil then
         if kind == 'input' then
            local s = digits(layer.dim)
            if #s == 3 then dims = {s[3], s[2], s[1]}
            elseif #s == 2 then dims = {1, s[2], s[1]}
            else fail(fname, "could not parse the input dimension '" .. layer.dim .. "'") end
            self.inputShape = s
         elseif kind == 'dense' then
            self.inputShape = {layer.dim}
            dims = {layer.dim, 1, 1}
         else
            fail(fname, "the input dimension must be the first entry of 'layer'")
         end
         lines[#lines + 1] = tableRow('Input', dims[3], dims[2], dims[1])
         is1D = dims[2] == 1
      elseif kind == 'conv' then
         local s = digits(layer.dim)
         local out, k = s[1], s[2]
         if not out or not k then fail(fname, "conv layer '" .. layer.dim .. "' needs channels and a kernel size") end
         local stride, padding, dilation = opt('stride', 1), opt('padding', math.floor(k / 2)), opt('dilation', 1)
         local groups, delay = opt('groups', 1), opt('delay', false)
         local function outSize(n) return math.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride + 1) end
         local b
         if not is1D then
            b = ConvBlock(sl, dims[1], out, k, stride, padding, dilation, groups, opt('wScale', 100), hook,
               self.weightNorm, delay, opt('maxDelay', 62), self.countLog)
            dims = {out, outSize(dims[2]), outSize(dims[3])}
         else
            b = ConvBlock(sl, dims[1], out, {1, k}, {1, stride}, {0, padding}, {1, dilation}, groups,
               opt('wScale', 100), hook, self.weightNorm, delay, opt('maxDelay', 62), self.countLog)
            dims = {out, 1, outSize(dims[3])}
         end
         add(b)
         self.layerDims[#self.layerDims + 1] = {dims[1], dims[2], dims[3]}
         lines[#lines + 1] = tableRow('Conv', dims[3], dims[2], dims[1], k, stride, padding, delay, countParams(b))
      elseif kind == 'pool' then
         local k = digits(layer.dim)[1]
         if not k then fail(fname, "pool layer '" .. layer.dim .. "' needs a kernel size") end
         add(PoolBlock(sl, k, nil, 0, 1, self.countLog))
         dims = {dims[1], math.ceil(dims[2] / k), math.ceil(dims[3] / k)}
         self.layerDims[#self.layerDims + 1] = {dims[1], dims[2], dims[3]}
         lines[#lines + 1] = tableRow('Pool', dims[3], dims[2], dims[1], k)
      elseif kind == 'dense' then
         if dims[2] ~= 1 or dims[3] ~= 1 then
            add(FlattenBlock(self.countLog))
            dims = {dims[1] * dims[2] * dims[3], 1, 1}
            self.layerDims[#self.layerDims + 1] = {dims[1], 1, 1}
         end
         local delay = opt('delay', false)
         local b = add(DenseBlock(sl, dims[1], layer.dim, opt('wScale', 100), hook, self.weightNorm, delay,
            opt('maxDelay', 62), self.countLog))
         dims = {layer.dim, 1, 1}
         self.layerDims[#self.layerDims + 1] = {dims[1], 1, 1}
         lines[#lines + 1] = tableRow('Dense', 1, 1, dims[1], nil, nil, nil, delay, countParams(b))
      elseif kind == 'average' then
         local n = digits(layer.dim)[1]
         dims = {n, 1, 1}
         self.layerDims[#self.layerDims + 1] = {n, 1, 1}
         add(AverageBlock(n, self.countLog))
         lines[#lines + 1] = tableRow('Average', 1, 1, n)
      else
         fail(fname, "an input entry ('" .. layer.dim .. "') may only come first")
      end
   end
   if dims == nil then fail(fname, "the 'layer' list is empty") end
   self.nOutput = dims[1] * dims[2] * dims[3]
   lines[#lines + 1] = string.format('|%-10s %5s %5s %5s %5s %5s %5s %5s|%10d|', 'Total', '', '', '', '', '', '', '',
      countParams(self))
   self.summary = table.concat(lines, '\n')
   if opts.verbose ~= false then
      -- as the reference: the simulation and neuron sections, then the table
      local view = require('slayer.params')({simulation = netParams.simulation, neuron = netParams.neuron})
      view:print('simulation')
      print('')
      view:print('neuron')
      print('')
      print('\nNetwork Architecture:')
      print(self.summary)
   end
end

function Network:forward(spike)
   local counts = {}
   for _, b in ipairs(self.blocks) do
      if self.countLog then
         local cnt
         spike, cnt = b(spike)
         if cnt ~= nil then counts[#counts + 1] = cnt:item() end
      else
         spike = b(spike)
      end
   end
   if self.countLog then return spike, T.fromtable(counts, {1, #counts}, spike.device) end
   return spike
end

--- Clamp every learnable delay to [0, maxDelay] (call after each optimiser step).
function Network:clamp()
   for _, b in ipairs(self.blocks) do
      if b.delayOp then b.delayOp.delay:clamp_(0, b.maxDelay) end
   end
end

--- gradFlow([path]): ||grad||_2 / numel of each weighted block's weight
-- (of weight_g with weightNorm), to watch for vanishing or exploding
-- gradients; with a path prefix also drawn on a log scale against the block
-- index into path..'gradFlow.png' and .svg, as the reference.  Returns the
-- norms, and the files when drawn.
function Network:gradFlow(path)
   if path ~= nil and type(path) ~= 'string' then
      fail('gradFlow', 'expected a path prefix (a string), got ' .. type(path))
   end
   local out = {}
   for _, b in ipairs(self.blocks) do
      if b.gradLog then
         local g = (b.weightNorm and b.weightOp.weight_g or b.weightOp.weight).grad
         if g == nil then
            out[#out + 1] = 0 / 0
         else
            local s = A.noGrad(function() return (g * g):sum():item() end)
            out[#out + 1] = math.sqrt(s) / g:numel()
         end
      end
   end
   if path == nil then return out end
   return out, require('slayer.plot').lines({{name = 'gradient norm / elements', values = out}},
      {output = path .. 'gradFlow', xlabel = 'Layer', ylabel = 'Gradient', logy = true}, 'gradFlow')
end

---------------------------------------------------------------------------
-- dataset
---------------------------------------------------------------------------

local Dataset = nn.class('snn.auto.dataset')
M.SlayerDataset = Dataset

-- events as an snn.io event, a tensor (N, 4) or a list of {x, y, p, t} rows
local function toEvent(ev, fname)
   local sio = require 'slayer.io'
   if type(ev) == 'table' and getmetatable(ev) == sio.Event then
      if ev.dim ~= 2 then fail(fname, 'expected 2-D events (x, y, p, t), got ' .. ev.dim .. '-D') end
      return ev
   end
   local rows
   if T.isTensor(ev) then
      if ev:dim() ~= 2 or ev:size(2) ~= 4 then fail(fname, 'expected events as an (N, 4) tensor of x, y, p, t') end
      rows = ev:detach():cpu():totable()
      local n = #rows / 4
      local x, y, p, t = {}, {}, {}, {}
      for i = 1, n do
         x[i], y[i], p[i], t[i] = rows[4 * i - 3], rows[4 * i - 2], rows[4 * i - 1], rows[4 * i]
      end
      return sio.event(x, y, p, t)
   end
   if type(ev) ~= 'table' then fail(fname, 'expected events (an snn.io event, an (N, 4) tensor or rows), got ' .. type(ev)) end
   local x, y, p, t = {}, {}, {}, {}
   for i, r in ipairs(ev) do
      if type(r) ~= 'table' or #r ~= 4 then fail(fname, 'event row ' .. i .. ' is not {x, y, p, t}') end
      x[i], y[i], p[i], t[i] = r[1], r[2], r[3], r[4]
   end
   return sio.event(x, y, p, t)
end

--- dataset(base, network[, opts]): base has base:get(i) -> events, label
-- (1-based) and base:size() (else #base); events are x, y, p, t (ms).
-- opts: randomShift, binningMode ('OR'), fullDataset (T = ceil(max t), Ts ignored),
-- or those three positionally, as the reference.
function Dataset:__init(base, network, ...)
   local fname = 'auto.dataset'
   local opts = options(fname, {'randomShift', 'binningMode', 'fullDataset'}, {}, nil, ...)
   if type(base) ~= 'table' or type(base.get) ~= 'function' then fail(fname, 'expected a dataset with get(i)') end
   if type(network) ~= 'table' or type(network.inputShape) ~= 'table' or not network.nOutput then
      fail(fname, 'expected an snn.auto.loihi.Network')
   end
   if #network.inputShape ~= 3 then
      fail(fname, 'the network input must be WxHxC (got ' .. #network.inputShape .. ' numbers), as the reference')
   end
   local sim = network._netParams.simulation
   self.base = base
   self.samplingTime, self.sampleLength = sim.Ts, sim.tSample
   self.nTimeBins = math.floor(sim.tSample / sim.Ts)
   self.inputShape, self.nOutput = network.inputShape, network.nOutput
   self.tensorShape = {self.inputShape[3], self.inputShape[2], self.inputShape[1], self.nTimeBins}
   self.randomShift, self.binningMode, self.fullDataset = opts.randomShift or false, opts.binningMode or 'OR',
      opts.fullDataset or false
end

function Dataset:size()
   if type(self.base.size) == 'function' then return self.base:size() end
   return #self.base
end

function Dataset:get(i)
   local fname = 'auto.dataset'
   local events, label = self.base:get(i)
   local ev = toEvent(events, fname)
   local shape = self.tensorShape
   if self.fullDataset then
      local tmax = -math.huge
      for k = 0, ev.n - 1 do tmax = math.max(tmax, ev.t[k]) end
      shape = {shape[1], shape[2], shape[3], math.ceil(tmax)}
   end
   local input = ev:toSpikeTensor(T.zeros(shape), self.samplingTime, self.randomShift, self.binningMode)
   local target = T.zeros({self.nOutput, 1, 1, 1})
   if type(label) ~= 'number' or label % 1 ~= 0 or label < 1 or label > self.nOutput then
      fail(fname, 'sample ' .. i .. ' has label ' .. tostring(label) .. ', expected 1..' .. self.nOutput)
   end
   target:data()[label - 1] = 1
   return input, target, label
end

---------------------------------------------------------------------------
-- assistant
---------------------------------------------------------------------------

local Assistant = nn.class('snn.auto.assistant')
M.Assistant = Assistant

--- assistant(net, trainLoader, testLoader, error, optimizer[, opts]):
-- error(output, target, labels) returns a one-element loss tensor; opts:
-- scheduler (its step() runs after every training batch), stats
-- (snn.stats()), showTimeSteps, lossScale, printInterval (1); or positionally
-- as the reference (scheduler, stats, dataParallel (ignored), showTimeSteps,
-- lossScale, printInterval).  train(epoch[, {breakIter, printLog}]) and
-- test(epoch[, {evalLoss, slidingWindow, breakIter, printLog}]) take theirs
-- either way too.
function Assistant:__init(net, trainLoader, testLoader, error, optimizer, ...)
   local fname = 'auto.assistant'
   local opts = options(fname, {'scheduler', 'stats', 'dataParallel', 'showTimeSteps', 'lossScale', 'printInterval'},
      {}, function(t) return type(t.step) == 'function' end, ...)
   if not nn.isModule(net) then fail(fname, 'expected a network module, got ' .. type(net)) end
   if type(error) ~= 'function' then fail(fname, 'expected an error function (output, target, labels)') end
   self.net, self.module = net, net
   self.trainLoader, self.testLoader = trainLoader, testLoader
   self.error, self.optimizer = error, optimizer
   self.scheduler, self.stats = opts.scheduler, opts.stats
   self.showTimeSteps, self.lossScale, self.printInterval = opts.showTimeSteps or false, opts.lossScale,
      opts.printInterval or 1
end

local function deviceOf(self)
   local sl = self.module.slayer
   return sl and sl.srmKernel and sl.srmKernel.device or 'cpu'
end

local function scale(self) return self.lossScale or 1 end

local function header(self, loader, i, input, count)
   local n = loader.n or #loader.dataset
   local h = {string.format('[%d/%d (%.0f%%)]', i * loader.batchSize, n, 100 * i / loader:numBatches())}
   if self.module.countLog and T.isTensor(count) then
      local parts = {}
      for k, c in ipairs(count:detach():cpu():totable()) do parts[k] = string.format('%d', c) end
      h[#h + 1] = 'Spike count: ' .. table.concat(parts, ', ')
   end
   if self.showTimeSteps then h[#h + 1] = 'nTimeBins: ' .. input:size(-1) end
   return h
end

-- what print gets as its time: the reference's time per sample, or with a
-- progress bar (stats.epochSamples) the seconds since the pass began, which
-- the bar's rate and ETA are computed from
local function elapsedFor(st, t0, i, batchSize)
   local dt = require('slayer.utils').now() - t0
   if st.epochSamples then return dt end
   return dt / (i + 1) / batchSize
end

local function correctOf(output, labels)
   return require('slayer.utils').correct(output, labels)
end

--- One training epoch; opts: breakIter (stop after batch index breakIter, 0-based as the reference), printLog.
function Assistant:train(epoch, ...)
   local opts = options('assistant:train', {'breakIter', 'printLog'}, {}, nil, ...)
   epoch = epoch or 0
   local utils = require 'slayer.utils'
   local t0 = utils.now()
   local dev = deviceOf(self)
   local i = 0
   for input, target, labels in self.trainLoader:iter() do
      self.net:train()
      if input.device ~= dev then input, target = input:to(dev), target:to(dev) end
      local output, count
      if self.module.countLog then output, count = self.net(input) else output = self.net(input) end
      local st = self.stats
      if st then
         st.training.correctSamples = st.training.correctSamples + correctOf(output, labels)
         st.training.numSamples = st.training.numSamples + #labels
      end
      local loss = self.error(output, target, labels)
      if st then st.training.lossSum = st.training.lossSum + loss:item() * scale(self) end
      self.optimizer:zeroGrad()
      loss:backward()
      self.optimizer:step()
      if self.module.clamp then self.module:clamp() end
      if st and i % self.printInterval == 0 and opts.printLog ~= false then
         st:print(epoch, i, elapsedFor(st, t0, i, self.trainLoader.batchSize),
            header(self, self.trainLoader, i, input, count))
      end
      if opts.breakIter ~= nil and i >= opts.breakIter then break end
      if self.scheduler then self.scheduler:step() end
      i = i + 1
   end
end

-- causal moving sum of w bins per row, bins w+1.. kept, then per bin the
-- 1-based flat index (over batch and neurons) of the largest value
local function slidingPredictions(output, w)
   local Tn = output:size(5)
   local rows = output:numel() / Tn
   local x = T._contig(output:detach():cpu()):view({rows, 1, 1, 1, Tn})
   local filt = T.ones({1, w})
   local y = T._emptyLike(x)
   if C.sl_temporal_conv(y._c, x._c, filt._c, 1) ~= 0 then L.raise(L.lastError()) end
   local d = y:data()
   local preds = {}
   for t = w, Tn - 1 do
      local best, bi = -math.huge, 1
      for r = 0, rows - 1 do
         local v = d[r * Tn + t]
         if v > best then best, bi = v, r + 1 end
      end
      preds[#preds + 1] = bi
   end
   T._anchor(y)
   return preds
end

--- One testing pass without gradients; opts: evalLoss (true), slidingWindow
-- (a bin count: per-bin predictions of a batch of one sample, loss off),
-- breakIter, printLog.
function Assistant:test(epoch, ...)
   local opts = options('assistant:test', {'evalLoss', 'slidingWindow', 'breakIter', 'printLog'}, {}, nil, ...)
   epoch = epoch or 0
   local utils = require 'slayer.utils'
   local evalLoss = opts.evalLoss ~= false
   local w = opts.slidingWindow
   if w ~= nil then
      if not L.isWhole(w, 1, 2 ^ 31 - 1) then fail('assistant:test', 'slidingWindow must be a positive bin count') end
      evalLoss = false
   end
   local t0 = utils.now()
   local dev = deviceOf(self)
   local i = 0
   for input, target, labels in self.testLoader:iter() do
      self.net:evaluate()
      local count
      A.noGrad(function()
         if input.device ~= dev then input, target = input:to(dev), target:to(dev) end
         local output
         if self.module.countLog then output, count = self.net(input) else output = self.net(input) end
         local st = self.stats
         local nPred = 0
         if w == nil then
            if st then
               st.testing.correctSamples = st.testing.correctSamples + correctOf(output, labels)
               st.testing.numSamples = st.testing.numSamples + #labels
            end
         else
            if #labels ~= 1 then fail('assistant:test', 'slidingWindow needs a test loader of batch size 1') end
            local preds = slidingPredictions(output, w)
            nPred = #preds
            if st then
               local ok = 0
               for _, p in ipairs(preds) do if p == labels[1] then ok = ok + 1 end end
               st.testing.correctSamples = st.testing.correctSamples + ok
               st.testing.numSamples = st.testing.numSamples + nPred
            end
         end
         if st then
            if evalLoss then
               st.testing.lossSum = st.testing.lossSum + self.error(output, target, labels):item() * scale(self)
            elseif w == nil then
               st.testing.lossSum = st.testing.lossSum + scale(self)
            else
               st.testing.lossSum = st.testing.lossSum + nPred * scale(self)
            end
         end
      end)
      local st = self.stats
      if st and i % self.printInterval == 0 and opts.printLog ~= false then
         st:print(epoch, i, elapsedFor(st, t0, i, self.testLoader.batchSize),
            header(self, self.testLoader, i, input, count))
      end
      if opts.breakIter ~= nil and i >= opts.breakIter then break end
      i = i + 1
   end
end

M.dataset = Dataset
M.assistant = Assistant

return M
