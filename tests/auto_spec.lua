-- snn.auto: networks from the parameter file, the event dataset wrapper and
-- the training assistant (the reference's src/auto, SPEC.md section 18)
local snn = require 'slayer'
local H = require 'support.helpers'
local T = snn.tensor

local function params(layers, extra)
   local p = {
      simulation = {Ts = 1, tSample = 12},
      neuron = {type = 'LOIHI', vThMant = 80, vDecay = 128, iDecay = 1024, refDelay = 1, wgtExp = 0, tauRho = 1,
         scaleRho = 1},
      layer = layers,
      training = {error = {type = 'NumSpikes', tgtSpikeRegion = {start = 0, stop = 12},
         tgtSpikeCount = {[true] = 3, [false] = 1}}},
   }
   for k, v in pairs(extra or {}) do p[k] = v end
   return p
end

local function net(layers, opts)
   opts = opts or {}
   opts.verbose = false
   return snn.auto.loihi.Network(params(layers), opts)
end

local function bernoulli(shape, p, seed)
   snn.manualSeed(seed)
   return T.rand(shape):lt(p)
end

describe('snn.auto.loihi.Network', function()
   it('builds the 04 NMNIST-auto network: flatten, then dense 2312 -> 512 -> 512 -> 11, 1,451,520 weights', function()
      local n = net({{dim = '34x34x2'}, {dim = 512}, {dim = 512}, {dim = 11}})
      local kinds = {}
      for i, b in ipairs(n.blocks) do kinds[i] = b.__typename end
      assert.are.same({'snn.auto.flattenBlock', 'snn.auto.denseBlock', 'snn.auto.denseBlock', 'snn.auto.denseBlock'},
         kinds)
      assert.are.same({34, 34, 2}, n.inputShape)
      assert.are.equal(11, n.nOutput)
      assert.are.same({{2312, 1, 1}, {512, 1, 1}, {512, 1, 1}, {11, 1, 1}}, n.layerDims)
      local total = 0
      for _, p in ipairs(n:parameters()) do total = total + p:numel() end
      assert.are.equal(2312 * 512 + 512 * 512 + 512 * 11, total)
      assert.truthy(n.summary:find('|   Type   |  W  |  H  |  C  | ker | str | pad |delay|  params  |', 1, true))
      -- the reference's footer: '|{:10s}' then seven ' {:5s}' fields, then the count
      assert.truthy(n.summary:find('|Total' .. string.rep(' ', 5 + 7 * 6) .. '|   1451520|', 1, true), n.summary)
   end)

   it('follows the convolution formula with padding k//2 and ceil for pools', function()
      local n = net({{dim = '9x7x2'}, {dim = '4c3'}, {dim = '2a'}, {dim = '3c3', padding = 0, stride = 2}, {dim = 5}})
      -- conv k3 (pad 1): 7x9; pool 2: ceil -> 4x5; conv k3 pad 0 stride 2: floor((4-3)/2+1) = 1, floor((5-3)/2+1) = 2
      assert.are.same({{4, 7, 9}, {4, 4, 5}, {3, 1, 2}, {6, 1, 1}, {5, 1, 1}}, n.layerDims)
      local y = n.blocks[1](T.zeros({1, 2, 7, 9, 12}))
      assert.are.same({1, 4, 7, 9, 12}, y:shape())
      y = n.blocks[2](y)
      assert.are.same({1, 4, 4, 5, 12}, y:shape())
      assert.are.same({1, 3, 1, 2, 12}, n.blocks[3](y):shape())
      assert.are.same({1, 5, 1, 1, 12}, n(T.zeros({1, 2, 7, 9, 12})):shape())
   end)

   it('computes spikeLoihi(op(x)) then the one-tick delay, block after block', function()
      local n = net({{dim = '4x4x2'}, {dim = '3c3'}, {dim = '2a'}, {dim = 5}})
      local x = bernoulli({2, 2, 4, 4, 12}, 0.3, 1)
      for _, b in ipairs(n.blocks) do
         if b.weightOp and b.weightOp.weight and b.weightOp.weight:requiresGrad() then
            snn.manualSeed(7)
            b.weightOp.weight:copy(T.rand(b.weightOp.weight:shape()) * 400 - 100)
         end
      end
      local sl = n.slayer
      local c, p, d = n.blocks[1].weightOp, n.blocks[2].weightOp, n.blocks[4].weightOp
      local want = sl:delayShift(sl:spikeLoihi(c(x)), 1)
      want = sl:delayShift(sl:spikeLoihi(p(want)), 1)
      want = want:reshape({2, -1, 1, 1, 12})
      want = sl:delayShift(sl:spikeLoihi(d(want)), 1)
      local got = n(x)
      assert.are.same({2, 5, 1, 1, 12}, got:shape())
      assert.are.equal(0, T.maxAbsDiff(got, want))
      assert.is_true(want:sum():item() > 0)
   end)

   it('returns the spike count of every weighted block with countLog', function()
      local n = net({{dim = 6}, {dim = 8}, {dim = 4}}, {countLog = true})
      for _, b in ipairs(n.blocks) do b.weightOp.weight:fill(60) end
      local x = bernoulli({1, 6, 1, 1, 12}, 0.5, 2)
      local out, counts = n(x)
      assert.are.same({1, 2}, counts:shape())
      local h = n.blocks[1](x)
      assert.are.equal(h:sum():item(), counts:totable()[1])
      assert.are.equal(out:sum():item(), counts:totable()[2])
   end)

   it('averages groups of consecutive outputs (Navg)', function()
      local n = net({{dim = 4}, {dim = 6}, {dim = '2avg'}})
      local x = bernoulli({1, 4, 1, 1, 12}, 0.5, 3)
      n.blocks[1].weightOp.weight:fill(80)
      local d = n.blocks[1](x)
      local got = n(x):totable()
      local dv = d:totable()
      for o = 0, 1 do
         for t = 1, 12 do
            local m = (dv[(3 * o) * 12 + t] + dv[(3 * o + 1) * 12 + t] + dv[(3 * o + 2) * 12 + t]) / 3
            assert.is_true(math.abs(got[o * 12 + t] - m) < 1e-6)
         end
      end
   end)

   it('learns per-channel delays, clamped to [0, maxDelay]', function()
      local n = net({{dim = 3}, {dim = 4, delay = true, maxDelay = 5}})
      local dl = n.blocks[1].delayOp.delay
      assert.are.same({4, 1, 1}, dl:shape())
      dl:copy(T.fromtable({-1, 2.5, 7, 0}, {4, 1, 1}))
      n:clamp()
      assert.are.same({0, 2.5, 5, 0}, dl:totable())
   end)

   it('defaults a layer entry to wScale 100 and maxDelay 62, as the entry that spells them out', function()
      local function build(extra)
         local layers = {{dim = '5x5x2'}, {dim = '4c3', delay = true}, {dim = '2a'}, {dim = 6, delay = true}}
         for k, v in pairs(extra) do layers[2][k], layers[4][k] = v, v end
         snn.manualSeed(31)
         return net(layers)
      end
      local default, explicit = build({}), build({wScale = 100, maxDelay = 62})
      local smaller = build({wScale = 10})
      for _, k in ipairs({1, 4}) do
         local w = H.values(default.blocks[k].weightOp.weight)
         assert.are.same(H.values(explicit.blocks[k].weightOp.weight), w)
         assert.are_not.same(H.values(smaller.blocks[k].weightOp.weight), w)
         assert.are.equal(62, default.blocks[k].maxDelay)
      end
      -- clamp() keeps the delays of both blocks within [0, 62]
      default.blocks[1].delayOp.delay:copy(T.fromtable({-1, 70, 61.5, 62.5}, {4, 1, 1}))
      default.blocks[4].delayOp.delay:copy(T.fromtable({-0.5, 62, 100, 3, 0, 63}, {6, 1, 1}))
      default:clamp()
      assert.are.same({0, 62, 61.5, 62}, default.blocks[1].delayOp.delay:totable())
      assert.are.same({0, 62, 62, 3, 0, 62}, default.blocks[4].delayOp.delay:totable())
   end)

   it('normalises the dense and conv weights with weightNorm: the same spikes, the gradient through g and v', function()
      local layers = {{dim = '5x5x2'}, {dim = '4c3'}, {dim = '2a'}, {dim = 6}}
      snn.manualSeed(21)
      local a = net(layers, {weightNorm = true})
      snn.manualSeed(21)
      local b = net(layers)
      local _, names = a:parameters()
      assert.are.same({'blocks.1.weightOp.weight_g', 'blocks.1.weightOp.weight_v', 'blocks.4.weightOp.weight_g',
         'blocks.4.weightOp.weight_v'}, names)
      assert.is_true(a.blocks[1].weightNorm and not b.blocks[1].weightNorm)
      local x = bernoulli({2, 2, 5, 5, 12}, 0.4, 4)
      local ya, yb = a(x), b(x)
      -- v * g / ||v|| is the weight again to rounding, and quantised to steps of 2 it is the same
      assert.are.equal(0, T.maxAbsDiff(ya, yb))
      assert.is_true(ya:sum():item() > 0)
      local R = T.randn(ya:shape())
      ;(ya * R):sum():backward()
      ;(yb * R):sum():backward()
      -- dL/dg[o] = sum_i dL/dw[o, i] * v[o, i] / ||v[o]||, with dL/dw the plain network's gradient
      for _, k in ipairs({1, 4}) do
         local op = a.blocks[k].weightOp
         local O = op.weight_v:size(1)
         local gw = b.blocks[k].weightOp.weight.grad:reshape({O, -1}):totable()
         local v = op.weight_v:reshape({O, -1}):totable()
         local gg = op.weight_g.grad:totable()
         local n = #v / O
         for o = 1, O do
            local nv, dot, scale = 0, 0, 0
            for i = 1, n do nv = nv + v[(o - 1) * n + i] ^ 2 end
            for i = 1, n do
               dot = dot + gw[(o - 1) * n + i] * v[(o - 1) * n + i] / math.sqrt(nv)
               scale = scale + math.abs(gw[(o - 1) * n + i] * v[(o - 1) * n + i] / math.sqrt(nv))
            end
            assert.is_true(math.abs(gg[o] - dot) <= 1e-5 * scale + 1e-12, k .. ', ' .. o .. ': ' .. gg[o] .. ' vs ' .. dot)
         end
         assert.is_true(op.weight_g.grad:abs():max() > 0 and op.weight_v.grad:abs():max() > 0)
      end
      -- gradFlow: ||grad|| / numel of weight_g with weightNorm, of the weight without
      local fa, fb = a:gradFlow(), b:gradFlow()
      assert.are.equal(2, #fa)
      for i, k in ipairs({1, 4}) do
         local function flow(g)
            local s = 0
            for _, v in ipairs(g:totable()) do s = s + v * v end
            return math.sqrt(s) / g:numel()
         end
         H.assertClose({fa[i]}, {flow(a.blocks[k].weightOp.weight_g.grad)}, 1e-6, 0)
         H.assertClose({fb[i]}, {flow(b.blocks[k].weightOp.weight.grad)}, 1e-6, 0)
      end
   end)

   it('builds blocks with the reference\'s defaults: weights quantised in steps of 2, stride 1, no padding', function()
      local sl = net({{dim = 3}, {dim = 2}}).slayer
      local A = snn.auto.loihi
      local d = A.denseBlock(sl, 16, 4)
      d.weightOp.weight:detach():copy(T.rand({4, 16, 1, 1, 1}) * 10)
      local x = bernoulli({1, 16, 1, 1, 12}, 0.5, 6)
      -- the quantised weight is what the op uses: round(w / 2) * 2
      local q = snn.quantize(d.weightOp.weight:detach(), 2)
      assert.is_true(T.maxAbsDiff(q, d.weightOp.weight) > 0)
      local plain = sl:dense(16, 4, 100, false)
      plain.weight:detach():copy(q)
      assert.are.equal(0, T.maxAbsDiff(d.weightOp(x), plain(x)))
      assert.is_nil(A.denseBlock(sl, 16, 4, 100, false).weightOp.preHookFx)
      assert.is_function(A.convBlock(sl, 2, 4, 3).weightOp.preHookFx)
      local p = A.convBlock(sl, 2, 4, 3).paramsDict
      assert.are.same({1, 0, 1, 1}, {p.stride, p.padding, p.dilation, p.groups})
   end)

   it('draws gradFlow on a log scale into path..gradFlow.png and .svg when given a path', function()
      local n = net({{dim = 6}, {dim = 8}, {dim = 4}})
      for _, blk in ipairs(n.blocks) do blk.weightOp.weight:detach():fill(60) end
      n(bernoulli({1, 6, 1, 1, 12}, 0.5, 5)):sum():backward()
      local prefix = os.tmpname()
      local norms, files = n:gradFlow(prefix)
      assert.are.equal(2, #norms)
      assert.are.same({prefix .. 'gradFlow.png', prefix .. 'gradFlow.svg'}, files)
      for _, f in ipairs(files) do
         local h = assert(io.open(f, 'rb'))
         local head = h:read(8)
         h:close()
         assert.truthy(head == '\137PNG\r\n\26\n' or head:find('<?xml', 1, true) or head:find('<svg', 1, true), f)
         os.remove(f)
      end
      os.remove(prefix)
      local ok, err = pcall(n.gradFlow, n, 5)
      assert.is_false(ok)
      assert.truthy(err:find('gradFlow: expected a path prefix (a string), got number', 1, true), err)
   end)

   it('uses a layer\'s own neuron section, and rejects what it cannot parse', function()
      local own = {type = 'LOIHI', vThMant = 10, vDecay = 128, iDecay = 1024, refDelay = 1, wgtExp = 0, tauRho = 1,
         scaleRho = 1}
      local n = net({{dim = 3}, {dim = 4, neuron = own}})
      assert.are.equal(640, n.blocks[1]._slayer.neuron.theta)
      assert.are.equal(5120, n.slayer.neuron.theta)
      -- its kernels are reachable, so that net:to(device) moves them
      local seen = {}
      for _, e in ipairs(n:namedTensors()) do seen[e.tensor] = true end
      assert.is_true(seen[n.blocks[1]._slayer.srmKernel])
      assert.has_error(function() net({{dim = 'foo'}, {dim = 4}}) end)
      assert.has_error(function() net({{dim = '4c3'}, {dim = 4}}) end)
   end)
end)

describe('snn.auto.dataset', function()
   local base = {
      rows = {{{0, 0, 1, 0.4}, {2, 1, 2, 3.6}, {2, 1, 2, 3.9}}, {{1, 1, 1, 11.6}, {0, 1, 2, 2.2}}},
      labels = {2, 1},
   }
   function base:get(i) return self.rows[i], self.labels[i] end
   function base:size() return #self.rows end

   it('bins x, y, p, t rows into (C, H, W, T) with p - min p, and a one-hot target', function()
      local n = net({{dim = '3x2x2'}, {dim = 2}})
      local ds = snn.auto.dataset(base, n)
      assert.are.equal(2, ds:size())
      local x, target, label = ds:get(1)
      assert.are.same({2, 2, 3, 12}, x:shape())
      assert.are.same({0, 1}, target:view({2}):totable())
      assert.are.equal(2, label)
      local v = x:totable()
      local function at(c, h, w, t) return v[((c * 2 + h) * 3 + w) * 12 + t + 1] end
      assert.are.equal(1, at(0, 0, 0, 0))
      assert.are.equal(1, at(1, 1, 2, 4)) -- 3.6 and 3.9 ms: one bin (OR)
      assert.are.equal(2, x:sum():item())
      -- event 11.6 ms rounds to bin 12: dropped
      assert.are.equal(1, ds:get(2):sum():item())
      local full = snn.auto.dataset(base, n, {fullDataset = true})
      assert.are.same({2, 2, 3, 4}, full:get(1):shape()) -- ceil(3.9)
   end)

   it('makes int(tSample / Ts) time bins, truncating (0.3 / 0.1 = 2.9999999999999996 gives 2)', function()
      assert.is_true(0.3 / 0.1 < 3)
      local p = params({{dim = '3x2x2'}, {dim = 2}})
      p.simulation = {Ts = 0.1, tSample = 0.3}
      local ds = snn.auto.dataset(base, snn.auto.loihi.Network(p, {verbose = false}))
      assert.are.same({2, 2, 3, 2}, ds:get(1):shape())
   end)

   it('takes the reference\'s positional arguments as well as an options table', function()
      local printed = {}
      local realPrint = _G.print
      _G.print = function(...) printed[#printed + 1] = table.concat({...}, ' ') end
      local ok, n = pcall(snn.auto.loihi.Network, params({{dim = 3}, {dim = 2}}), false, true, true)
      _G.print = realPrint
      assert.is_true(ok, n)
      assert.is_true(#printed > 0) -- the positional form prints the table, as the reference
      assert.is_true(n.countLog and n.weightNorm and n.blocks[1].weightNorm)
      assert.is_nil(n.blocks[1].weightOp.preHookFx)
      local bad, err = pcall(snn.auto.loihi.Network, params({{dim = 3}, {dim = 2}}), 5)
      assert.is_false(bad)
      assert.truthy(err:find('preHookFx must be a function or false', 1, true), err)
      bad, err = pcall(snn.auto.loihi.Network, params({{dim = 3}, {dim = 2}}), false, false, false, 1)
      assert.is_false(bad)
      assert.truthy(err:find('auto.loihi.Network: expected at most 3 arguments after the required ones, got 4', 1, true),
         err)
      local m = net({{dim = '3x2x2'}, {dim = 2}})
      local ds = snn.auto.dataset(base, m, true, 'SUM')
      assert.are.same({true, 'SUM', false}, {ds.randomShift, ds.binningMode, ds.fullDataset})
      local stats = snn.stats({out = {write = function() end, flush = function() end}})
      local boss = snn.auto.assistant(m, {}, {}, function() end, {}, nil, stats, false, false, 2, 5)
      assert.are.same({stats, 2, 5}, {boss.stats, boss.lossScale, boss.printInterval})
      -- an options table followed by nils is still the options; a plain
      -- scheduler table is the positional scheduler; a misspelt key is named
      boss = snn.auto.assistant(m, {}, {}, function() end, {}, {lossScale = 2, printInterval = 5}, nil)
      assert.are.same({2, 5}, {boss.lossScale, boss.printInterval})
      assert.is_nil(boss.scheduler)
      local sched = {step = function() end}
      assert.are.equal(sched, snn.auto.assistant(m, {}, {}, function() end, {}, sched).scheduler)
      local bad, msg = pcall(snn.auto.assistant, m, {}, {}, function() end, {}, {schedular = sched})
      assert.is_false(bad)
      assert.truthy(msg:find("auto.assistant: unknown option 'schedular'", 1, true), msg)
      bad, msg = pcall(snn.auto.dataset, base, m, {randomshift = true})
      assert.is_false(bad)
      assert.truthy(msg:find("auto.dataset: unknown option 'randomshift'", 1, true), msg)
   end)

   it('trains and tests through the assistant, with statistics', function()
      local n = net({{dim = '3x2x2'}, {dim = 2}})
      n.blocks[2].weightOp.weight:fill(100)
      local ds = snn.auto.dataset(base, n)
      local loader = snn.data.Loader(ds, {batchSize = 2})
      local err = snn.loss(params({{dim = '3x2x2'}, {dim = 2}}), snn.loihi)
      local stats = snn.stats({out = {write = function() end, flush = function() end}})
      local opt = snn.optim.Nadam(n:parameters(), {lr = 0.01, amsgrad = true})
      local losses = {}
      local boss = snn.auto.assistant(n, loader, loader, function(out, target)
         local l = err:numSpikes(out, target)
         losses[#losses + 1] = l:item()
         return l
      end, opt, {stats = stats})
      local w0 = n.blocks[2].weightOp.weight:clone()
      boss:train(0)
      assert.are.equal(2, stats.training.numSamples)
      H.assertClose({stats.training.lossSum}, {losses[1]}, 1e-12, 0)
      assert.is_true(T.maxAbsDiff(w0, n.blocks[2].weightOp.weight) > 0)
      boss:test(0)
      assert.are.equal(2, stats.testing.numSamples)
      H.assertClose({stats.testing.lossSum}, {losses[2]}, 1e-12, 0)
      -- sliding window: one prediction per bin from bin w on, loss off (1 per prediction);
      -- output 1 listens to input 1 only, output 2 to the others
      local w = {}
      for o = 1, 2 do for f = 1, 12 do w[#w + 1] = ((o == 1) == (f == 1)) and 200 or 0 end end
      n.blocks[2].weightOp.weight:copy(T.fromtable(w, {2, 12, 1, 1, 1}))
      local one = snn.auto.assistant(n, loader, snn.data.Loader(ds, {batchSize = 1}), function() error('no loss') end,
         opt, {stats = snn.stats({out = {write = function() end, flush = function() end}})})
      one:test(0, {slidingWindow = 4})
      assert.are.equal(2 * (12 - 4), one.stats.testing.numSamples)
      assert.are.equal(2 * (12 - 4), one.stats.testing.lossSum)
      -- per bin t >= 4 (0-based): the output with the largest sum over bins t-3..t
      local right = 0
      for i = 1, 2 do
         local x, _, label = ds:get(i)
         local o = snn.noGrad(function() return n(x:view({1, 2, 2, 3, 12})) end):totable()
         for t = 4, 11 do
            local best, arg = -1, 0
            for r = 0, 1 do
               local sum = 0
               for k = t - 3, t do sum = sum + o[r * 12 + k + 1] end
               if sum > best then best, arg = sum, r + 1 end
            end
            if arg == label then right = right + 1 end
         end
      end
      assert.is_true(right > 0 and right < 16)
      assert.are.equal(right, one.stats.testing.correctSamples)
   end)

   it('prints the time per sample as the reference, and the time of the pass under a progress bar', function()
      local n = net({{dim = '3x2x2'}, {dim = 2}})
      local ds = snn.auto.dataset(base, n)
      local loader = snn.data.Loader(ds, {batchSize = 2})
      local utils = require 'slayer.utils'
      local now = utils.now
      local function elapsedPrinted(epochSamples)
         local text = {}
         local stats = snn.stats({out = {write = function(_, ...) for _, v in ipairs({...}) do text[#text + 1] = v end end,
            flush = function() end}, tty = false, epochSamples = epochSamples})
         local boss = snn.auto.assistant(n, loader, loader, function(out) return out:sum() end, {step = function() end,
            zeroGrad = function() end}, {stats = stats})
         local calls = 0
         utils.now = function() calls = calls + 1; return calls == 1 and 0 or 1000 end -- the pass takes 1000 s
         local ok, err = pcall(boss.train, boss, 0)
         utils.now = now
         assert(ok, err)
         text = table.concat(text)
         return tonumber(text:match('([%d.]+) ms elapsed')), text
      end
      -- 1000 s for the first batch of 2 samples: 500 s a sample, as the reference prints it
      assert.are.equal(500000, (elapsedPrinted(nil)))
      -- with a bar to draw: the 1000 s of the pass, from which the bar's rate comes (2 samples in 1000 s)
      local ms, text = elapsedPrinted({train = 4})
      assert.are.equal(1000000, ms)
      assert.is_truthy(text:find('train [===============               ]  50%      0.0 samples/s  ETA 0:16:40', 1, true), text)
   end)

   it('clamps the delays to [0, maxDelay] after each optimizer step of train', function()
      local n = net({{dim = '3x2x2'}, {dim = 2, delay = true, maxDelay = 5}})
      local delay = n.blocks[2].delayOp.delay
      local ds = snn.auto.dataset(base, n)
      -- an optimizer that throws the delays out of range at every step and notes what it found
      local seen = {}
      local opt = {zeroGrad = function() end, step = function()
         seen[#seen + 1] = delay:totable()
         delay:copy(T.fromtable({-2, 9}, {2, 1, 1}))
      end}
      delay:copy(T.fromtable({1, 2}, {2, 1, 1}))
      local loader = snn.data.Loader(ds, {batchSize = 1})
      local boss = snn.auto.assistant(n, loader, loader, function(out) return out:sum() end, opt)
      boss:train(0)
      assert.are.same({{1, 2}, {0, 5}}, seen) -- the second step found the first one's delays clamped
      assert.are.same({0, 5}, delay:totable())
   end)

   it('adds lossScale to lossSum once per batch in test with evalLoss = false, as the reference', function()
      local n = net({{dim = '3x2x2'}, {dim = 2}})
      local ds = snn.auto.dataset(base, n)
      local quiet = {out = {write = function() end, flush = function() end}}
      for _, batchSize in ipairs({1, 2}) do
         local loader = snn.data.Loader(ds, {batchSize = batchSize})
         local boss = snn.auto.assistant(n, loader, loader, function() error('no loss') end, {},
            {stats = snn.stats(quiet), lossScale = 7})
         boss:test(0, {evalLoss = false})
         assert.are.equal(2, boss.stats.testing.numSamples)
         assert.are.equal(7 * 2 / batchSize, boss.stats.testing.lossSum) -- 2 samples: 2 batches, then 1
      end
      -- without a lossScale each batch adds 1
      local loader = snn.data.Loader(ds, {batchSize = 1})
      local boss = snn.auto.assistant(n, loader, loader, function() error('no loss') end, {},
         {stats = snn.stats(quiet)})
      boss:test(0, {evalLoss = false})
      assert.are.equal(2, boss.stats.testing.lossSum)
   end)
end)
