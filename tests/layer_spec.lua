-- snn.layer: kernels, psp, pspLayer, pspFilter, spike, delays (SPEC.md 5-8, 10)
local snn = require 'slayer'
local ffi = require 'ffi'
local H = require 'support.helpers'
local T = snn.tensor

local f32 = ffi.new('float[1]')
local function r32(x) f32[0] = x return f32[0] end

local NMNIST = {neuron = {type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1, scaleRho = 1},
   simulation = {Ts = 1, tSample = 300}}
local SNNDATA = {neuron = {type = 'SRMALPHA', theta = 10, tauSr = 1, tauRef = 1, scaleRef = 2, tauRho = 1, scaleRho = 1},
   simulation = {Ts = 0.1, tSample = 50}}

local function layerOf(cfg, full) return snn.layer(cfg.neuron, cfg.simulation, full) end

-- independent causal filter in doubles: y[t] = Ts * sum_i h[i] x[t-i]
local function refConv(x, h, Ts, rows, Tn)
   local y = {}
   for r = 0, rows - 1 do
      for t = 0, Tn - 1 do
         local s = 0
         for i = 0, math.min(#h - 1, t) do s = s + h[i + 1] * x[r * Tn + t - i + 1] end
         y[r * Tn + t + 1] = s * Ts
      end
   end
   return y
end

local function refCorr(g, h, Ts, rows, Tn)
   local y = {}
   for r = 0, rows - 1 do
      for t = 0, Tn - 1 do
         local s = 0
         for i = 0, math.min(#h - 1, Tn - 1 - t) do s = s + h[i + 1] * g[r * Tn + t + i + 1] end
         y[r * Tn + t + 1] = s * Ts
      end
   end
   return y
end

describe('snn.layer kernels', function()
   it('builds the SRM kernels of the NMNIST examples (SPEC 5)', function()
      local sl = layerOf(NMNIST)
      local eps = sl.srmKernel:totable()
      assert.are.equal(77, #eps)
      H.assertClose({eps[1], eps[2], eps[3], eps[4], eps[77]}, {0, 0.24596, 0.445108, 0.604126, 0.0103388}, 1e-5, 1e-7)
      local s = 0
      for _, v in ipairs(eps) do s = s + v end
      assert.is_true(math.abs(s - 27.04828) < 1e-4)
      local nu = sl.refKernel:totable()
      assert.are.equal(11, #nu)
      H.assertClose(nu, {-0, -20, -14.7151776, -8.120117, -3.9829655, -1.8315639, -0.8085536, -0.3470253,
         -0.1459011, -0.0603833, -0.024682}, 1e-6, 1e-7)
      assert.is_true(1 / nu[1] < 0) -- negative zero, so the dip starts one bin later
      assert.are.equal(16, layerOf(NMNIST, true).refKernel:numel())
   end)

   it('builds the snnData kernels at Ts = 0.1 (SPEC 5 and 20.1)', function()
      assert.are.equal(77, layerOf(SNNDATA).srmKernel:numel())
      assert.are.equal(110, layerOf(SNNDATA).refKernel:numel())
      assert.are.equal(160, layerOf(SNNDATA, true).refKernel:numel())
      -- every value is the double formula rounded once to float32
      local sl = layerOf(SNNDATA)
      local got = sl.srmKernel:totable()
      for k = 0, 76 do
         local t = k * 0.1
         assert.are.equal(r32(t / 1 * math.exp(1 - t / 1)), got[k + 1])
      end
   end)

   it('keeps kernels of ceil(tSample/Ts) samples when the cut-off is never met', function()
      local sl = snn.layer(NMNIST.neuron, {Ts = 1, tSample = 20})
      assert.are.equal(20, sl.srmKernel:numel())
      assert.are.equal(300, layerOf(NMNIST).Ns)
   end)

   it('counts Ns = int(tSample / Ts) bins, truncating the double quotient (0.3 / 0.1 gives 2)', function()
      -- 0.3 / 0.1 is 2.9999999999999996 in doubles, so Python's int() gives 2, not 3
      assert.is_true(0.3 / 0.1 < 3)
      local sl = snn.layer(NMNIST.neuron, {Ts = 0.1, tSample = 0.3})
      assert.are.equal(2, sl.Ns)
      assert.are.same({1, 1, 1, 1, 2}, sl:replicateInTime(T.ones({1, 1, 1, 1})):shape())
      -- a quotient just short of a whole number is truncated too, not rounded
      assert.are.equal(2, snn.layer(NMNIST.neuron, {Ts = 1, tSample = 2.9}).Ns)
   end)

   it('rejects unknown neuron types and missing or non-numeric keys, and copies descriptors', function()
      local ok, err = pcall(snn.layer, {type = 'LIF', theta = 1}, NMNIST.simulation)
      assert.is_false(ok)
      assert.truthy(err:find("unknown neuron type 'LIF'"))
      local n = {type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1}
      ok, err = pcall(snn.layer, n, NMNIST.simulation)
      assert.truthy(err:find("no 'scaleRho'"))
      n.scaleRho = '1'
      ok, err = pcall(snn.layer, n, NMNIST.simulation)
      assert.truthy(err:find('scaleRho must be a number'))
      ok, err = pcall(snn.layer, NMNIST.neuron, {Ts = 1})
      assert.truthy(err:find("no 'tSample'"))
      local before = NMNIST.neuron.theta
      local sl = layerOf(NMNIST)
      sl.neuron.theta = 99
      assert.are.equal(before, NMNIST.neuron.theta)
   end)

   it('rejects thresholds and time constants that are not positive and finite, and sizes past its limits', function()
      local function with(k, v)
         local t = {}
         for a, b in pairs(NMNIST.neuron) do t[a] = b end
         t[k] = v
         return t
      end
      for _, case in ipairs({{'theta', 0}, {'theta', 0 / 0}, {'tauSr', -1}, {'tauSr', 0 / 0}, {'tauSr', 1 / 0},
         {'tauRef', 0}, {'tauRho', -2}}) do
         local ok, err = pcall(snn.layer, with(case[1], case[2]), NMNIST.simulation)
         assert.is_false(ok)
         assert.truthy(err:find('layer: neuron.' .. case[1] .. ' must be positive and finite', 1, true), err)
      end
      local ok, err = pcall(snn.layer, with('scaleRef', 1 / 0), NMNIST.simulation)
      assert.truthy(not ok and err:find('neuron.scaleRef must be finite', 1, true), err)
      assert.is_true((pcall(snn.layer, with('scaleRef', 0), NMNIST.simulation))) -- no refractory response
      ok, err = pcall(snn.layer, NMNIST.neuron, {Ts = 1, tSample = 1 / 0})
      assert.truthy(not ok and err:find('tSample must be positive and finite', 1, true), err)
      ok, err = pcall(snn.layer, NMNIST.neuron, {Ts = 1e-9, tSample = 50})
      assert.truthy(not ok and err:find('time bins, more than a tensor dimension holds', 1, true), err)
      -- 10^8 bins fit, but the kernel would take ~7.6 10^8 taps: refused at maxKernelTaps, at once
      ok, err = pcall(snn.layer, NMNIST.neuron, {Ts = 1e-7, tSample = 10})
      assert.truthy(not ok and err:find('longer than 1000000 taps at Ts 1e-07', 1, true), err)
   end)
end)

describe('psp', function()
   it('filters every row causally with the spike-response kernel', function()
      snn.manualSeed(1)
      local sl = layerOf(SNNDATA)
      local x = T.bernoulli({2, 3, 2, 1, 120}, 0.1) * 10 + T.randn({2, 3, 2, 1, 120}) * T.bernoulli({2, 3, 2, 1, 120}, 0.5)
      local y = sl:psp(x)
      assert.are.same(x:shape(), y:shape())
      H.assertClose(y, refConv(x:totable(), sl.srmKernel:totable(), 0.1, 12, 120), 1e-5, 1e-5)
   end)

   it('turns one spike at t0 into the kernel delayed by t0 (Ts = 1)', function()
      local sl = layerOf(NMNIST)
      local x = T.zeros({1, 1, 1, 1, 300})
      x:narrow(5, 51, 1):fill(1)
      local y = sl:psp(x):totable()
      local eps = sl.srmKernel:totable()
      for t = 1, 300 do
         local k = t - 51
         assert.are.equal((k >= 0 and k < 77) and eps[k + 1] or 0, y[t])
      end
   end)

   it('gives the same result on sparse and dense rows', function()
      -- a spike train (sparse path) and the same train plus tiny noise in
      -- every bin (dense path) must agree to float rounding
      local sl = layerOf(NMNIST)
      local x = T.bernoulli({4, 8, 1, 1, 300}, 0.02)
      local dense = x + T.full(x:shape(), 1e-30)
      H.assertClose(sl:psp(x), sl:psp(dense), 1e-6, 1e-6)
   end)

   it('filters and correlates dense rows right at every length around the kernel and block sizes', function()
      -- the dense loops block outputs by 128/64/32/16 once every tap applies;
      -- lengths below, at and past the kernel length (77) and the blocks
      snn.manualSeed(4)
      local sl = layerOf(NMNIST)
      local h = sl.srmKernel:totable()
      for _, Tn in ipairs({1, 15, 16, 17, 76, 77, 78, 93, 94, 140, 205, 300, 333}) do
         local x = T.randn({1, 3, 1, 1, Tn}):requiresGrad(true)
         local g = T.randn({1, 3, 1, 1, Tn})
         local y = sl:psp(x)
         y:backward(g)
         H.assertClose(y, refConv(x:detach():totable(), h, 1, 3, Tn), 1e-5, 1e-5)
         H.assertClose(x.grad, refCorr(g:totable(), h, 1, 3, Tn), 1e-5, 1e-5)
      end
   end)

   it('back-propagates with the correlation (its adjoint) and passes a gradient check', function()
      local sl = layerOf(SNNDATA)
      local x = T.randn({2, 2, 1, 2, 40}):requiresGrad(true)
      local g = T.randn({2, 2, 1, 2, 40})
      sl:psp(x):backward(g)
      H.assertClose(x.grad, refCorr(g:totable(), sl.srmKernel:totable(), 0.1, 8, 40), 1e-5, 1e-6)
      assert(H.gradcheck(function(v) return sl:psp(v) end, {T.randn({1, 2, 1, 1, 30}):requiresGrad(true)}))
   end)

   it('rejects inputs that are not 5-D', function()
      local sl = layerOf(NMNIST)
      local ok, err = pcall(sl.psp, sl, T.zeros({2, 3, 4, 300}))
      assert.is_false(ok)
      assert.truthy(err:find('psp: expected a 5%-D') and err:find('%[2, 3, 4, 300%]'))
      assert.has_error(function() sl:psp(42) end)
   end)
end)

describe('pspLayer and pspFilter', function()
   it('pspLayer starts as psp (reference test 011) and learns its filter', function()
      local sl = layerOf(SNNDATA)
      local pl = sl:pspLayer()
      assert.are.same({1, 1, 1, 1, 77}, pl.weight:shape())
      assert.are.equal(sl.srmKernel:totable()[2], pl.weight:totable()[76]) -- stored reversed
      local x = T.bernoulli({2, 3, 1, 1, 200}, 0.05) * 10
      local d = (pl(x) - sl:psp(x)):square():sum():item()
      assert.is_true(math.sqrt(d) / x:numel() < 1e-6)
      local small = snn.layer(SNNDATA.neuron, {Ts = 0.1, tSample = 1.2})
      local p2 = small:pspLayer()
      assert(H.gradcheck(function(v, w) p2.weight = w return p2(v) end,
         {T.randn({2, 2, 1, 1, 15}):requiresGrad(true), p2.weight}))
   end)

   it('pspFilter with reversed kernel copies equals psp in every filter block (test 012)', function()
      local sl = layerOf(SNNDATA)
      local pf = sl:pspFilter(5, 77)
      assert.are.same({5, 1, 1, 1, 77}, pf.weight:shape())
      local w = pf.weight:detach()
      for f = 1, 5 do w:select(1, f):copy(sl:pspLayer().weight:detach():reshape({1, 1, 1, 77})) end
      local x = T.bernoulli({2, 3, 2, 2, 150}, 0.05) * 10
      local y = pf(x)
      assert.are.same({2, 15, 2, 2, 150}, y:shape())
      local p = sl:psp(x)
      for f = 0, 4 do
         H.assertClose(y:narrow(2, f * 3 + 1, 3), p, 1e-6, 1e-6, 'filter block ' .. f)
      end
   end)

   it('initialises pspFilter uniformly within 1/sqrt(L) and passes a gradient check', function()
      local sl = layerOf(SNNDATA)
      local pf = sl:pspFilter(3, 25, 2)
      local lo, hi = pf.weight:min(), pf.weight:max()
      assert.is_true(lo >= -2 / 5 and hi <= 2 / 5 and hi - lo > 0.4)
      local pf2 = sl:pspFilter(2, 6)
      assert(H.gradcheck(function(v, w) pf2.weight = w return pf2(v) end,
         {T.randn({2, 2, 1, 1, 12}):requiresGrad(true), pf2.weight}))
      assert.has_error(function() sl:pspFilter(0, 5) end)
   end)

   it('defaults pspFilter to filterScale 1: the weights of an explicit 1 under the same seed', function()
      local sl = layerOf(SNNDATA)
      local function weightsOf(filterScale)
         snn.manualSeed(12)
         return H.values(sl:pspFilter(3, 25, filterScale).weight)
      end
      local default = weightsOf(nil)
      assert.are.same(weightsOf(1), default)
      -- and a scale multiplies those very draws
      local doubled = weightsOf(2)
      for i, v in ipairs(default) do assert.are.equal(r32(2 * v), doubled[i]) end
   end)
end)

-- the reference's spike loop, emulated in float32 in Lua
local function refSpike(u, nu, theta, Ts, rows, Tn)
   local s, uu = {}, {}
   for i = 1, #u do uu[i] = u[i] end
   local amp = r32(1 / Ts)
   for r = 0, rows - 1 do
      for t = 0, Tn - 1 do
         local k = r * Tn + t + 1
         if uu[k] >= theta then
            s[k] = amp
            for j = 0, #nu - 1 do
               if t + j < Tn then uu[k + j] = r32(uu[k + j] + nu[j + 1]) end
            end
         else
            s[k] = 0
         end
      end
   end
   return s, uu
end

describe('spike', function()
   it('emits 1/Ts spikes and folds the refractory response into the potential in place', function()
      snn.manualSeed(4)
      local sl = layerOf(SNNDATA)
      local x = T.bernoulli({2, 4, 1, 1, 300}, 0.05) * 10
      local u = sl:psp(x) * 6
      local before = u:totable()
      local s = sl:spike(u)
      local es, eu = refSpike(before, sl.refKernel:totable(), 10, 0.1, 8, 300)
      assert.are.same(es, s:totable())
      assert.are.same(eu, u:totable())
      assert.is_true(s:sum():item() > 0)
   end)

   it('back-propagates the surrogate rho of the post-refractory potential (SPEC 8)', function()
      local n = {type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 0.5, scaleRho = 1.5}
      local sl = snn.layer(n, {Ts = 1, tSample = 100})
      local u = (T.randn({2, 3, 1, 1, 100}) * 8 + 5):requiresGrad(true)
      local v = u * 1 -- keep the leaf; spike writes into v
      local s = sl:spike(v)
      local g = T.randn(s:shape())
      s:backward(g)
      local post, gv, got = v:totable(), g:totable(), u.grad:totable()
      local tau = r32(0.5 * 10)
      local scale = r32(1.5) / tau
      for i = 1, #post do
         local rho = r32(scale) * math.exp(-math.abs(post[i] - 10) / tau)
         local want = gv[i] * rho
         assert(math.abs(got[i] - want) <= 1e-5 * math.abs(want) + 1e-7, 'element ' .. i)
      end
   end)

   it('lets the surrogate fall to subnormal values and to 0 far from the threshold, as float32 exp', function()
      -- tauRho * theta = 1: rho = exp(-|u - theta|); the reference's torch.exp
      -- gives subnormals below 2^-126 (|u - theta| > 87.3) and 0 past 103.97
      local n = {type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 0.1, scaleRho = 1}
      local sl = snn.layer(n, {Ts = 1, tSample = 6})
      local dist = {50, 80, 88, 95, 103, 130}
      local vals = {}
      for i, d in ipairs(dist) do vals[i] = 10 - d end -- all below theta: no spike, no refractory change
      local u = T.fromtable(vals, {1, 1, 1, 1, 6}):requiresGrad(true)
      sl:spike(u * 1):backward(T.ones({1, 1, 1, 1, 6}))
      local got = u.grad:view({6}):totable()
      for i, d in ipairs(dist) do
         local want = math.exp(-d)
         if want < 2 ^ -150 then
            assert.are.equal(0, got[i])
         else
            -- subnormals carry fewer bits: within an ulp of the smallest step
            assert(math.abs(got[i] - want) <= 1e-6 * want + 2 ^ -149, string.format('|u - theta| = %g: got %g, want %g', d, got[i], want))
         end
      end
   end)

   it('rejects a wrong-rank potential', function()
      local sl = layerOf(NMNIST)
      local ok, err = pcall(sl.spike, sl, T.zeros({3, 300}))
      assert.is_false(ok)
      assert.truthy(err:find('spike: expected a 5%-D'))
   end)
end)

describe('delayShift', function()
   it('shifts every neuron by trunc(delay/Ts) bins (reference test 009)', function()
      snn.manualSeed(9)
      local sl = layerOf(SNNDATA)
      local x = T.randn({2, 3, 2, 1, 50})
      local d = T.rand({3, 2, 1}) * 2 - 1
      local y = sl:delayShift(x, d, 0.1):totable()
      local xv, dv = x:totable(), d:totable()
      for n = 0, 1 do
         for r = 0, 5 do
            local k = r32(dv[r + 1]) / r32(0.1)
            k = k >= 0 and math.floor(r32(k)) or math.ceil(r32(k))
            for t = 0, 49 do
               local src = t - k
               local want = (src >= 0 and src < 50) and xv[(n * 6 + r) * 50 + src + 1] or 0
               assert.are.equal(want, y[(n * 6 + r) * 50 + t + 1])
            end
         end
      end
      local y4 = sl:delayShift(x, 4):totable()
      for t = 1, 50 do assert.are.equal(t > 4 and x:totable()[t - 4] or 0, y4[t]) end
      -- negative delays advance the signal, truncating toward zero (-2.7 bins -> -2)
      local ym = sl:delayShift(x, -2.7):totable()
      assert.are.equal(x:totable()[3], ym[1])
   end)

   it('sends the gradient back through the opposite shift', function()
      local sl = layerOf(NMNIST)
      assert(H.gradcheck(function(v) return sl:delayShift(v, 3) end, {T.randn({2, 2, 1, 1, 20}):requiresGrad(true)}))
      local d = T.fromtable({1, -2, 5}, {3, 1, 1})
      assert(H.gradcheck(function(v) return sl:delayShift(v, d) end, {T.randn({2, 3, 1, 1, 20}):requiresGrad(true)}))
      assert.has_error(function() sl:delayShift(T.zeros({1, 3, 1, 1, 5}), T.zeros({2})) end)
   end)

   it('leaves a row unshifted for a NaN delay (the reference\'s GPU conversion gives 0) and zeroes it past T', function()
      local sl = layerOf(NMNIST)
      local x = T.randn({1, 3, 1, 1, 8})
      local d = T.fromtable({0 / 0, 1e30, -1e30}, {3, 1, 1})
      local y = sl:delayShift(x, d):totable()
      local xv = x:totable()
      for t = 1, 8 do
         assert.are.equal(xv[t], y[t])
         assert.are.equal(0, y[8 + t])
         assert.are.equal(0, y[16 + t])
      end
   end)

   it('refuses a scalar delay that is not finite, naming it', function()
      local sl = layerOf(NMNIST)
      local x = T.randn({1, 3, 1, 1, 8})
      for _, d in ipairs({0 / 0, 1 / 0, -1 / 0}) do
         local ok, err = pcall(sl.delayShift, sl, x, d)
         assert.is_false(ok)
         assert.matches('delayShift: expected a finite delay, got ' .. (d ~= d and 'nan' or '%-?inf'), err)
      end
   end)
end)

describe('delay', function()
   it('holds a learnable delay per neuron or per channel initialised in [0, 1)', function()
      local sl = layerOf(NMNIST)
      local d = sl:delay({2, 3, 4})
      assert.are.same({2, 3, 4}, d.delay:shape())
      assert.is_true(d.delay:min() >= 0 and d.delay:max() < 1)
      assert.are.same({5, 1, 1}, sl:delay(5).delay:shape())
      local params = d:parameters()
      assert.are.equal(d.delay, params[1])
   end)

   it('has the reference delay gradient -Ts*sum g*(y[t]-y[t-1])/Ts (test 010)', function()
      snn.manualSeed(10)
      local sl = layerOf(SNNDATA)
      local dl = sl:delay({3, 1, 2})
      dl.delay:detach():mul_(0):add_(T.fromtable({0.05, 0.31, 0.72, 0.1, 0.45, 0.99}, {3, 1, 2}))
      local x = sl:psp(T.bernoulli({2, 3, 1, 2, 60}, 0.1) * 10):requiresGrad(true)
      local y = dl(x)
      local g = T.randn(y:shape())
      y:backward(g)
      local yv, gv = y:totable(), g:totable()
      for r = 0, 5 do
         local s = 0
         for n = 0, 1 do
            local base = (n * 6 + r) * 60
            for t = 0, 59 do
               local prev = t > 0 and yv[base + t] or 0
               s = s + gv[base + t + 1] * (prev - yv[base + t + 1]) / 0.1
            end
         end
         local want = s * 0.1
         assert(math.abs(dl.delay.grad:totable()[r + 1] - want) <= 1e-4 * math.abs(want) + 1e-4, 'neuron ' .. r)
      end
      -- the input gradient is the shift back
      local k = {}
      for r = 1, 6 do
         local q = r32(dl.delay:totable()[r]) / r32(0.1)
         k[r] = math.floor(r32(q))
      end
      local gx = x.grad:totable()
      for t = 0, 59 do
         local src = t + k[2]
         assert.are.equal(src < 60 and gv[60 + src + 1] or 0, gx[60 + t + 1])
      end
   end)

   it('tiles a per-channel delay over H and W and sums its gradient', function()
      local sl = layerOf(NMNIST)
      local dl = sl:delay(2)
      local x = T.randn({1, 2, 2, 2, 30}):requiresGrad(true)
      local y = dl(x)
      assert.are.same(x:shape(), y:shape())
      y:backward(T.randn(y:shape()))
      assert.are.same({2, 1, 1}, dl.delay.grad:shape())
      local bad = sl:delay({3, 1, 1})
      local ok, err = pcall(bad.forward, bad, x)
      assert.is_false(ok)
      assert.truthy(err:find('delay'))
   end)

   it('gives a per-channel delay the per-neuron gradients of its channel summed over H and W', function()
      snn.manualSeed(11)
      local sl = layerOf(NMNIST)
      local C, Hn, Wn, Tn = 2, 2, 3, 40
      local perChannel = sl:delay(C)
      perChannel.delay:detach():mul_(0):add_(T.fromtable({1.4, 2.7}, {C, 1, 1}))
      -- the same delays written out per neuron: channel c's value at each of its H*W neurons
      local perNeuron = sl:delay({C, Hn, Wn})
      local tiled = {}
      for c = 1, C do
         for _ = 1, Hn * Wn do tiled[#tiled + 1] = perChannel.delay:totable()[c] end
      end
      perNeuron.delay:detach():mul_(0):add_(T.fromtable(tiled, {C, Hn, Wn}))
      local x = sl:psp(T.bernoulli({2, C, Hn, Wn, Tn}, 0.2))
      local g = T.randn({2, C, Hn, Wn, Tn})
      local y1 = perChannel(x)
      local y2 = perNeuron(x)
      assert.are.same(y2:totable(), y1:totable())
      y1:backward(g)
      y2:backward(g)
      local per, got = perNeuron.delay.grad:totable(), perChannel.delay.grad:totable()
      for c = 1, C do
         local want = 0
         for k = 1, Hn * Wn do want = want + per[(c - 1) * Hn * Wn + k] end
         assert(math.abs(got[c] - want) <= 1e-5 * math.abs(want) + 1e-5,
            'channel ' .. c .. ': ' .. got[c] .. ' vs ' .. want)
      end
   end)
end)
