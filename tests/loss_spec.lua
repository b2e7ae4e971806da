local ffi = require 'ffi'
-- snn.loss, snn.predict, snn.quantize (SPEC.md 11-13)
local snn = require 'slayer'
local H = require 'support.helpers'
local T = snn.tensor

local function netParams(errorDesc, sim)
   return {
      neuron = {type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1, scaleRho = 1},
      simulation = sim or {Ts = 1, tSample = 300},
      training = {error = errorDesc},
   }
end

local NUMSPIKES = {type = 'NumSpikes', tgtSpikeRegion = {start = 0, stop = 300}, tgtSpikeCount = {[true] = 60, [false] = 10}}

-- corr(Ts*e, eps, Ts) computed here, row by row
local function refGrad(e, eps, Ts, rows, Tn)
   local g = {}
   for r = 0, rows - 1 do
      for t = 0, Tn - 1 do
         local s = 0
         for i = 0, math.min(#eps - 1, Tn - 1 - t) do s = s + eps[i + 1] * Ts * e[r * Tn + t + i + 1] end
         g[r * Tn + t + 1] = s * Ts
      end
   end
   return g
end

describe('loss construction', function()
   it('accepts the network descriptor and the three-argument form', function()
      local p = netParams(NUMSPIKES)
      local a = snn.loss(p)
      local b = snn.loss(p.training.error, p.neuron, p.simulation)
      assert.are.equal(77, a.slayer.srmKernel:numel())
      assert.are.equal(77, b.slayer.srmKernel:numel())
      local ok, err = pcall(snn.loss, {neuron = p.neuron, simulation = p.simulation})
      assert.is_false(ok)
      assert.truthy(err:find('training.error'))
   end)

   it('checks the error type of each loss', function()
      local err = snn.loss(netParams({type = 'SpikeTime'}))
      local x = T.zeros({1, 2, 1, 1, 300})
      local ok, msg = pcall(err.numSpikes, err, x, T.zeros({1, 2, 1, 1, 1}))
      assert.is_false(ok)
      assert.truthy(msg:find("error type is 'SpikeTime', expected 'NumSpikes'"))
   end)
end)

describe('spikeTime', function()
   it('is 1/2 sum(psp(out - desired)^2) Ts with gradient corr(Ts e)', function()
      snn.manualSeed(2)
      local sim = {Ts = 0.5, tSample = 40}
      local err = snn.loss(netParams({type = 'SpikeTime'}, sim))
      local out = (T.bernoulli({2, 3, 1, 1, 80}, 0.1) * 2):requiresGrad(true)
      local des = T.bernoulli({2, 3, 1, 1, 80}, 0.1) * 2
      local E = err:spikeTime(out, des)
      local e = err.slayer:psp(out:detach() - des)
      local ev = e:totable()
      local s = 0
      for _, v in ipairs(ev) do s = s + v * v end
      assert.is_true(math.abs(E:item() - 0.5 * s * 0.5) <= 1e-5 * E:item())
      E:backward()
      H.assertClose(out.grad, refGrad(ev, err.slayer.srmKernel:totable(), 0.5, 6, 80), 1e-4, 1e-6)
      local des2 = T.bernoulli({1, 2, 1, 1, 30}, 0.2) * 2
      assert(H.gradcheck(function(o) return err:spikeTime(o, des2) end,
         {(T.rand({1, 2, 1, 1, 30})):requiresGrad(true)}, {rtol = 2e-2, atol = 1e-2}))
   end)
end)

describe('numSpikes', function()
   it('reduces to sum (actual - desired)^2 / (2 (stop - start)) over a full window at Ts = 1', function()
      snn.manualSeed(3)
      local err = snn.loss(netParams(NUMSPIKES))
      local out = T.bernoulli({3, 10, 1, 1, 300}, 0.1)
      local target = T.zeros({3, 10, 1, 1, 1})
      for n = 1, 3 do target:select(1, n):select(1, n + 2):fill(1) end
      local E = err:numSpikes(out, target):item()
      local counts = out:sum(5):totable()
      local want = 0
      for n = 1, 3 do
         for c = 1, 10 do
            local d = (c == n + 2) and 60 or 10
            local a = counts[(n - 1) * 10 + c]
            want = want + (a - d) ^ 2 / (2 * 300)
         end
      end
      assert.is_true(math.abs(E - want) <= 1e-4 * want)
   end)

   it('judges spikes inside the window by count and outside by psp, with the reference gradient', function()
      snn.manualSeed(5)
      local desc = {type = 'NumSpikes', tgtSpikeRegion = {start = 20, stop = 70}, tgtSpikeCount = {[true] = 8, [false] = 2}}
      local sim = {Ts = 1, tSample = 100}
      local err = snn.loss(netParams(desc, sim))
      local out = T.bernoulli({2, 4, 1, 1, 100}, 0.08):requiresGrad(true)
      local target = T.zeros({2, 4, 1, 1, 1})
      target:select(1, 1):select(1, 2):fill(1)
      target:select(1, 2):select(1, 4):fill(1)
      local E = err:numSpikes(out, target, 2)
      -- independent error signal
      local ov, tv = out:detach():totable(), target:totable()
      local outside = {}
      for i = 1, #ov do
         local t = (i - 1) % 100
         outside[i] = (t >= 20 and t < 70) and 0 or ov[i]
      end
      local e = err.slayer:psp(T.fromtable(outside, {2, 4, 1, 1, 100})):totable()
      for r = 0, 7 do
         local a = 0
         for t = 20, 69 do a = a + ov[r * 100 + t + 1] end
         local d = tv[r + 1] == 1 and 8 or 2
         local c = (a - d) / 50 * 2
         for t = 20, 69 do e[r * 100 + t + 1] = e[r * 100 + t + 1] + c end
      end
      local s = 0
      for _, v in ipairs(e) do s = s + v * v end
      assert.is_true(math.abs(E:item() - 0.5 * s) <= 1e-5 * s)
      E:backward()
      H.assertClose(out.grad, refGrad(e, err.slayer.srmKernel:totable(), 1, 8, 100), 1e-4, 1e-5)
   end)

   it('rounds the window to bins half to even and clamps it to the sample', function()
      assert.are.equal(0, snn.loss.rint(0.5))
      assert.are.equal(2, snn.loss.rint(1.5))
      assert.are.equal(2, snn.loss.rint(2.5))
      local desc = {type = 'NumSpikes', tgtSpikeRegion = {start = 0, stop = 400}, tgtSpikeCount = {[true] = 5, [false] = 1}}
      local err = snn.loss(netParams(desc, {Ts = 1, tSample = 100}))
      local out = T.zeros({1, 2, 1, 1, 100})
      local target = T.fromtable({1, 0}, {1, 2, 1, 1, 1})
      -- silence: e = c = -desired/400 over the 100 existing bins
      local want = 0.5 * ((5 / 400) ^ 2 + (1 / 400) ^ 2) * 100
      assert.is_true(math.abs(err:numSpikes(out, target):item() - want) < 1e-6 * want + 1e-9)
   end)

   it('takes a neuron as the true class only where desiredClass is exactly 1 (0.9 and 2 count as false)', function()
      local desc = {type = 'NumSpikes', tgtSpikeRegion = {start = 0, stop = 100}, tgtSpikeCount = {[true] = 5, [false] = 1}}
      local err = snn.loss(netParams(desc, {Ts = 1, tSample = 100}))
      local silent = T.zeros({1, 1, 1, 1, 100})
      -- silence over a full window at Ts = 1: E = desired^2 / (2 * 100)
      for _, v in ipairs({1, 0.9, 2, 0.5, 0, -1}) do
         local desired = v == 1 and 5 or 1
         local E = err:numSpikes(silent, T.fromtable({v}, {1, 1, 1, 1, 1})):item()
         assert(math.abs(E - desired ^ 2 / 200) <= 1e-6 * desired ^ 2,
            'desiredClass ' .. v .. ': loss ' .. E .. ', expected the count ' .. desired)
      end
   end)

   it('fuses the formula\'s tensor ops without changing a bit of the loss or its gradient', function()
      -- the formula as separate tensor ops, with the reference's roundings:
      -- the count in float32, c in double (NumPy's float32 - int64 is
      -- float64) rounded to float32 once
      local function composed(err, out, desiredClass, scale)
         local ed, Ts = err.errorDescriptor, err.Ts
         local start, stop = snn.loss.rint(ed.tgtSpikeRegion.start / Ts), snn.loss.rint(ed.tgtSpikeRegion.stop / Ts)
         local N, Cn, Hh, W, Tn = unpack(out:shape())
         local lo, hi = math.min(start, Tn), math.min(stop, Tn)
         local mask = T.zeros({1, 1, 1, 1, Tn})
         local outD = out:detach()
         local actual = T.zeros({N, Cn, Hh, W, 1})
         if hi > lo then
            mask:narrow(5, lo + 1, hi - lo):fill(1)
            actual = outD:narrow(5, lo + 1, hi - lo):sum(5) * Ts
         end
         local av, dv, cv = actual:totable(), desiredClass:totable(), {}
         for i = 1, #av do
            local d = dv[i] == 1 and ed.tgtSpikeCount[true] or ed.tgtSpikeCount[false]
            cv[i] = (av[i] - d) / (stop - start) * scale
         end
         local c = T.fromtable(cv, {N, Cn, Hh, W, 1})
         local e = err.slayer:psp(out - outD * mask) + c * mask
         return (e:square():sum() * 0.5) * Ts
      end
      local cases = {
         {Ts = 1, T = 120, start = 0, stop = 120, scale = 1},
         {Ts = 0.5, T = 90, start = 10, stop = 30, scale = 2.5},
         {Ts = 0.1, T = 80, start = 0.3, stop = 4, scale = 0.3}, -- 1/Ts not a power of 2
         {Ts = 1, T = 60, start = 20, stop = 500, scale = 1},     -- ends past the sample
         {Ts = 1, T = 60, start = 70, stop = 500, scale = 1},     -- begins past it: no bins
      }
      for i, cs in ipairs(cases) do
         snn.manualSeed(40 + i)
         local err = snn.loss(netParams({type = 'NumSpikes', tgtSpikeRegion = {start = cs.start, stop = cs.stop},
            tgtSpikeCount = {[true] = 60, [false] = 10}}, {Ts = cs.Ts, tSample = cs.T * cs.Ts}))
         local spikes = T.bernoulli({2, 3, 2, 1, cs.T}, 0.1) * (1 / cs.Ts)
         local target = T.zeros({2, 3, 2, 1, 1})
         target:narrow(2, 2, 1):fill(1)
         local a, b = spikes:clone():requiresGrad(true), spikes:clone():requiresGrad(true)
         local la, lb = err:numSpikes(a, target, cs.scale), composed(err, b, target, cs.scale)
         la:backward()
         lb:backward()
         assert.are.equal(lb:item(), la:item(), 'case ' .. i)
         assert.are.same(b.grad:totable(), a.grad:totable(), 'case ' .. i)
         assert.is_true(la:item() > 0)
      end
      -- one spike, count 60 over 300 bins, scale 3: c = (1 - 60) / 300 * 3 in
      -- double is -0.589999974 in float32 (float32 steps gave -0.590000033),
      -- and E = 1/2 * 300 * c^2
      local err = snn.loss(netParams({type = 'NumSpikes', tgtSpikeRegion = {start = 0, stop = 300},
         tgtSpikeCount = {[true] = 60, [false] = 10}}, {Ts = 1, tSample = 300}))
      local out = T.zeros({1, 1, 1, 1, 300})
      out:narrow(5, 100, 1):fill(1)
      local f32 = function(v) return ffi.new('float[1]', v)[0] end
      local c = f32((1 - 60) / 300 * 3)
      assert.are.equal(f32(-0.589999974), c)
      local want = f32(f32(300 * f32(c * c)) * 0.5)
      assert.are.equal(want, err:numSpikes(out, T.ones({1, 1, 1, 1, 1}), 3):item())
   end)

   it('computes 1/2 * sum(e^2) * Ts and its gradient in one op each, bit-identical to the tensor ops', function()
      -- sizes on both sides of the GPU's serial/block/chunked sums and of
      -- the CPU's 65,536-value chunks; a non-unit upstream gradient
      for i, n in ipairs({1, 64, 65, 65535, 65536, 200001}) do
         snn.manualSeed(60 + i)
         local Ts = ({1, 0.1, 0.5, 1, 0.3, 2})[i]
         local e = T.randn({n}) * 3
         local a, b = e:clone():requiresGrad(true), e:clone():requiresGrad(true)
         local la, lb = snn.loss._halfSquaredSum(a, Ts, 'spikeTime'), (b:square():sum() * 0.5) * Ts
         local g = T.fromtable({-1.7})
         la:backward(g)
         lb:backward(g)
         assert.are.equal(lb:item(), la:item(), 'n = ' .. n)
         assert.are.same(b.grad:totable(), a.grad:totable(), 'n = ' .. n)
      end
      -- the spikeTime loss uses it: the same bits as the composed formula
      local err = snn.loss(netParams({type = 'SpikeTime'}))
      local out = T.bernoulli({2, 3, 1, 1, 300}, 0.05)
      local want = T.bernoulli({2, 3, 1, 1, 300}, 0.05)
      local a, b = out:clone():requiresGrad(true), out:clone():requiresGrad(true)
      local la = err:spikeTime(a, want)
      local e = err.slayer:psp(b - want)
      local lb = (e:square():sum() * 0.5) * err.Ts
      la:backward()
      lb:backward()
      assert.are.equal(lb:item(), la:item())
      assert.are.same(b.grad:totable(), a.grad:totable())
   end)

   it('rejects a target of the wrong shape', function()
      local err = snn.loss(netParams(NUMSPIKES))
      local ok, msg = pcall(err.numSpikes, err, T.zeros({2, 10, 1, 1, 300}), T.zeros({2, 10}))
      assert.is_false(ok)
      assert.truthy(msg:find('numSpikes'))
      ok, msg = pcall(err.numSpikes, err, T.zeros({2, 10, 1, 1, 300}), T.zeros({2, 9, 1, 1, 1}))
      assert.truthy(msg:find('desiredClass %[2, 10, 1, 1, 1%]'))
   end)

   it('rejects a target region that is not finite (a NaN start, an end at infinity)', function()
      for _, r in ipairs({{start = 0 / 0, stop = 300, bad = 'start'}, {start = 0, stop = 1 / 0, bad = 'stop'},
         {start = -1 / 0, stop = 300, bad = 'start'}}) do
         local err = snn.loss(netParams({type = 'NumSpikes', tgtSpikeRegion = {start = r.start, stop = r.stop},
            tgtSpikeCount = {[true] = 60, [false] = 10}}))
         local ok, msg = pcall(err.numSpikes, err, T.zeros({2, 10, 1, 1, 300}), T.zeros({2, 10, 1, 1, 1}))
         assert.is_false(ok)
         assert.truthy(msg:find('numSpikes: tgtSpikeRegion.' .. r.bad .. ' must be a finite time', 1, true), msg)
      end
   end)

   -- the reference slices spikeOut[..., start:stop] in Python, where a
   -- negative bin counts from the end of the sample: start = -1 ms would
   -- make the window the last bin only, with a divisor of stop + 1 bins
   it('rejects a target region that begins or ends before time 0', function()
      for _, r in ipairs({{start = -1, stop = 300}, {start = -5, stop = -1}}) do
         local err = snn.loss(netParams({type = 'NumSpikes', tgtSpikeRegion = r,
            tgtSpikeCount = {[true] = 60, [false] = 10}}))
         local ok, msg = pcall(err.numSpikes, err, T.zeros({2, 10, 1, 1, 300}), T.zeros({2, 10, 1, 1, 1}))
         assert.is_false(ok)
         assert.truthy(msg:find('numSpikes: tgtSpikeRegion', 1, true) and msg:find('before time 0', 1, true), msg)
      end
      -- a start that rounds to bin 0 is fine
      local err = snn.loss(netParams({type = 'NumSpikes', tgtSpikeRegion = {start = -0.4, stop = 300},
         tgtSpikeCount = {[true] = 60, [false] = 10}}))
      local want = 0.5 * (10 / 300) ^ 2 * 300 * 20
      local got = err:numSpikes(T.zeros({2, 10, 1, 1, 300}), T.zeros({2, 10, 1, 1, 1})):item()
      assert.is_true(math.abs(got - want) < 1e-5 * want, got)
   end)
end)

describe('probSpikes', function()
   it('is not implemented, as in the reference (declared without a body), and says so', function()
      local err = snn.loss(netParams({type = 'ProbSpikes'}))
      local ok, msg = pcall(err.probSpikes, err, T.zeros({1, 2, 1, 1, 300}), T.zeros({1, 2, 1, 1, 300}))
      assert.is_false(ok)
      assert.truthy(msg:find('probSpikes: not implemented', 1, true), msg)
   end)
end)

describe('predict.getClass', function()
   it('picks the neuron with most spikes, 1-based, first maximum on ties', function()
      local s = T.zeros({3, 4, 1, 1, 10})
      s:select(1, 1):select(1, 3):narrow(3, 1, 5):fill(1)
      s:select(1, 2):select(1, 2):narrow(3, 1, 2):fill(1)
      s:select(1, 2):select(1, 4):narrow(3, 3, 2):fill(1)
      assert.are.same({3, 2, 1}, snn.predict.getClass(s):totable())
      assert.has_error(function() snn.predict.getClass(T.zeros({3, 4})) end)
      -- an empty batch has no classes; no neurons is an error naming getClass
      assert.are.same({0}, snn.predict.getClass(T.zeros({0, 10, 1, 1, 5})):shape())
      local ok, msg = pcall(snn.predict.getClass, T.zeros({2, 0, 1, 1, 5}))
      assert.truthy(not ok and msg:find('getClass: no output neurons', 1, true), msg)
   end)

   it('flattens C, H, W in row-major order', function()
      local s = T.zeros({1, 2, 2, 3, 4})
      s:select(1, 1):select(1, 2):select(1, 1):select(1, 3):fill(1) -- c = 2, h = 1, w = 3
      assert.are.same({(2 - 1) * 6 + (1 - 1) * 3 + 3}, snn.predict.getClass(s):totable())
   end)
end)

describe('quantize', function()
   it('rounds to the step, half to even, and passes the gradient straight through', function()
      local w = T.fromtable({-3, -1, 1, 3, 5, 2.9, -5.2}):requiresGrad(true)
      local q = snn.quantize(w, 2)
      assert.are.same({-4, -0, 0, 4, 4, 2, -6}, q:totable())
      q:backward(T.fromtable({1, 2, 3, 4, 5, 6, 7}))
      assert.are.same({1, 2, 3, 4, 5, 6, 7}, w.grad:totable())
      assert.are.same({0.5, 1}, snn.quantize(T.fromtable({0.6, 1.1}), 0.5):totable())
      -- the reference's call, quantizeWeights.apply(w, step), and its method form
      assert.are.same({-4, -0, 0, 4, 4, 2, -6}, snn.quantize.apply(w, 2):totable())
      assert.are.same({-4, -0, 0, 4, 4, 2, -6}, snn.quantize:apply(w, 2):totable())
      assert.has_error(function() snn.quantize(w, 0) end)
      -- steps whose float32 division would give inf or NaN
      for _, step in ipairs({1 / 0, 1e300, 1e-45, 0 / 0}) do
         local ok, err = pcall(snn.quantize, w, step)
         assert.truthy(not ok and err:find('quantize: expected a positive step within float32', 1, true), err)
      end
   end)

   it('defaults to step 1: rounds to whole numbers, half to even, as an explicit step of 1', function()
      local w = T.fromtable({-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.6, 1.4, -3.7})
      -- round(w / 1) * 1 with ties to the even neighbour
      local want = {-2, -2, -0, 0, 2, 2, 1, 1, -4}
      assert.are.same(want, snn.quantize(w):totable())
      assert.are.same(want, snn.quantize.apply(w):totable())
      assert.are.same(want, snn.utils.quantize(w):totable())
      assert.are.same(snn.quantize(w, 1):totable(), snn.quantize(w):totable())
   end)
end)
