-- snn.loihi: kernels, integer CUBA dynamics, surrogate gradient, synapses,
-- descriptor checks (SPEC.md 15)
local snn = require 'slayer'
local ffi = require 'ffi'
local bit = require 'bit'
local H = require 'support.helpers'
local T = snn.tensor

local f32 = ffi.new('float[1]')
local function r32(x) f32[0] = x return f32[0] end

local function loihiNeuron(over)
   local n = {type = 'LOIHI', vThMant = 80, vDecay = 128, iDecay = 1024, refDelay = 1, wgtExp = 0, tauRho = 1,
      scaleRho = 1}
   for k, v in pairs(over or {}) do n[k] = v end
   return n
end
local SIM = {Ts = 1, tSample = 350}

---------------------------------------------------------------------------
-- an independent model of the chip's neuron, written from SPEC 15.5 with
-- explicit 32-bit two's-complement wrapping: every intermediate is an exact
-- double, and bit.tobit reduces it modulo 2^32 into the int32 range
---------------------------------------------------------------------------

local TWO32 = 2 ^ 32

-- float -> int32 toward zero, saturating at the int32 limits, NaN -> 0
local function truncSat(x)
   if x ~= x then return 0 end
   if x >= 2 ^ 31 then return 2 ^ 31 - 1 end
   if x <= -2 ^ 31 then return -2 ^ 31 end
   return x >= 0 and math.floor(x) or math.ceil(x)
end

-- sign(z) * floor((|z| * keep mod 2^32) / 4096), z an int32
local function decayed(z, keep)
   local mag = math.abs(z)
   local d = math.floor(((mag * keep) % TWO32) / 4096)
   return z < 0 and -d or d
end

-- rows: list of lists of weighted-spike values (float32); returns the
-- spikes (0/1), voltages and currents as integers, per row
local function model(n, rows, Ts)
   local theta = n.vThMant * 64
   local wScale = 2 ^ (6 + n.wgtExp)
   local keepI, keepV = 4096 - n.iDecay, 4096 - n.vDecay
   local out = {}
   for r, x in ipairs(rows) do
      local S, V, U = {0}, {0}, {0}
      local u, v, last = 0, 0, nil
      for t = 1, #x - 1 do
         local a = truncSat(r32(x[t + 1] * r32(Ts)))
         u = bit.tobit(decayed(u, keepI) + wScale * a)
         local vNew = bit.tobit(decayed(v, keepV) + u)
         -- refractory: within refDelay - 1 bins after the last spike
         local refractory = last ~= nil and t - last < n.refDelay
         local spike = vNew > theta and not refractory
         if spike then last = t end
         v = (spike or refractory) and 0 or vNew
         S[t + 1], U[t + 1], V[t + 1] = spike and 1 or 0, u, spike and n.vDecay or v
      end
      out[r] = {S = S, V = V, U = U}
   end
   return out
end

-- rows -> (1, R, 1, 1, Tn) tensor
local function rowsTensor(rows)
   local flat = {}
   for _, x in ipairs(rows) do for _, v in ipairs(x) do flat[#flat + 1] = v end end
   return T.fromtable(flat, {1, #rows, 1, 1, #rows[1]})
end

-- weighted spikes W s for random even weights in [-wmax, wmax] and
-- Bernoulli(p) inputs (values 1/Ts, as spikes are)
local function weightedSpikes(nOut, nIn, Tn, p, wmax, Ts)
   local W = {}
   for o = 1, nOut do
      W[o] = {}
      for i = 1, nIn do W[o][i] = 2 * math.random(-wmax / 2, wmax / 2) end
   end
   local rows = {}
   for o = 1, nOut do rows[o] = {} end
   for t = 1, Tn do
      local s = {}
      for i = 1, nIn do s[i] = math.random() < p and 1 or 0 end
      for o = 1, nOut do
         local acc = 0
         for i = 1, nIn do if s[i] == 1 then acc = acc + W[o][i] end end
         rows[o][t] = r32(acc / Ts)
      end
   end
   return rows
end

-- compare the C dynamics with the model: spikes, voltage, current exactly
local function checkExact(n, rows, Ts, what)
   local sl = snn.loihi(n, {Ts = Ts, tSample = #rows[1] * Ts})
   local s, V, U = sl:spikeLoihiFull(rowsTensor(rows))
   local sv, Vv, Uv = H.values(s), H.values(V), H.values(U)
   local ref = model(n, rows, Ts)
   local Tn, amp, spikes = #rows[1], r32(1 / r32(Ts)), 0
   for r = 1, #rows do
      for t = 1, Tn do
         local i = (r - 1) * Tn + t
         local m = ref[r]
         if sv[i] ~= m.S[t] * amp or Vv[i] ~= r32(m.V[t]) or Uv[i] ~= r32(m.U[t]) then
            error(string.format('%s: row %d bin %d: C (s %g, V %.9g, U %.9g), model (s %g, V %d, U %d)', what, r, t - 1,
               sv[i], Vv[i], Uv[i], m.S[t] * amp, m.V[t], m.U[t]), 2)
         end
         spikes = spikes + m.S[t]
      end
   end
   return spikes, ref
end

describe('snn.loihi kernels (SPEC 15.3, 15.4)', function()
   before_each(function() snn.manualSeed(1234) end) -- the same draws whatever ran before
   it('builds the psp kernel of the defaults: 110 values, peak 195 at index 7', function()
      local sl = snn.loihi(loihiNeuron(), SIM)
      local k = sl.srmKernel:totable()
      assert.are.equal(110, #k)
      assert.are.same({64, 110, 142.5, 165, 179.5, 188.5, 193.5, 195, 194.5, 192.5, 189, 185},
         {unpack(k, 1, 12)})
      assert.are.same({1.5, 1, 0.5, 0}, {unpack(k, 107, 110)})
      assert.are.equal(195, sl.maxPsp)
      -- twice the kernel is the chip's recorded response (LoihiVth05.txt): 128, 220, 285, 330
      assert.are.same({128, 220, 285, 330}, {2 * k[1], 2 * k[2], 2 * k[3], 2 * k[4]})
   end)

   it('scales the peak with wgtExp: 393 for 1, 788 for 2', function()
      assert.are.equal(393, snn.loihi(loihiNeuron{wgtExp = 1}, SIM).maxPsp)
      assert.are.equal(788, snn.loihi(loihiNeuron{wgtExp = 2}, SIM).maxPsp)
   end)

   it('builds the refractory kernel: [0, -1000 theta x (refDelay - 1), -2 theta, -2 r1, ..., 0]', function()
      local sl = snn.loihi(loihiNeuron(), SIM)
      local k = sl.refKernel:totable()
      assert.are.equal(181, #k)
      -- r_{k+1} = floor(r_k * 3968 / 4096) from 5120
      assert.are.same({0, -10240, -9920, -9610}, {unpack(k, 1, 4)})
      assert.are.same({-2, 0}, {k[180], k[181]})
      local k3 = snn.loihi(loihiNeuron{refDelay = 3}, SIM).refKernel:totable()
      assert.are.same({0, -5120000, -5120000, -10240, -9920}, {unpack(k3, 1, 5)})
      assert.are.equal(183, #k3)
   end)

   it('keeps only the first Ns taps of a refractory period longer than the sample, and refuses endless kernels', function()
      local sl = snn.loihi(loihiNeuron{refDelay = 2 ^ 31 - 1}, SIM)
      local k = sl.refKernel:totable()
      assert.are.equal(sl.Ns, #k)
      assert.are.same({0, -5120000, -5120000}, {unpack(k, 1, 3)})
      assert.are.equal(-5120000, k[#k])
      -- no decay: constant kernels as long as the sample, refused past maxKernelTaps
      for _, c in ipairs({{'psp', {vDecay = 0, iDecay = 0}}, {'psp', {vDecay = 0}}, {'refractory', {refDelay = 2e6}}}) do
         local ok, err = pcall(snn.loihi, loihiNeuron(c[2]), {Ts = 1, tSample = 3e6})
         assert.is_false(ok)
         assert.truthy(err:find('loihi: the ' .. c[1] .. ' kernel would be', 1, true), err)
      end
      local ok, err = pcall(snn.loihi, loihiNeuron{scaleRho = 0 / 0}, SIM)
      assert.truthy(not ok and err:find('scaleRho must be finite', 1, true), err)
   end)

   it('is the voltage response of the integer neuron to one input of weight 2, for every decay', function()
      for _, d in ipairs({{1024, 128}, {0, 128}, {1024, 0}, {0, 0}, {4096, 4096}, {1, 4095}, {4096, 0}}) do
         for _, e in ipairs({-3, 0, 2}) do
            local n = loihiNeuron{iDecay = d[1], vDecay = d[2], wgtExp = e, vThMant = 2 ^ 25 - 1}
            local sl = snn.loihi(n, {Ts = 1, tSample = 120})
            local k = sl.srmKernel:totable()
            assert.is_true(#k >= 2)
            local x = T.zeros({1, 1, 1, 1, 120})
            x:data()[5] = 2
            local _, V = sl:spikeLoihiFull(x)
            local v = H.values(V)
            for j = 0, 114 do
               local want = k[j + 1] or 0 -- the kernel ended at its final 0
               if v[6 + j] ~= 2 * want then
                  error(string.format('iDecay %d vDecay %d wgtExp %d: V[%d] = %g, 2 * kernel[%d] = %g', d[1], d[2], e,
                     5 + j, v[6 + j], j, 2 * want))
               end
            end
            -- the maximum is taken over the whole kernel
            local peak = 0
            for _, y in ipairs(k) do peak = math.max(peak, y) end
            assert.are.equal(peak, sl.maxPsp)
         end
      end
   end)

   it('never changes the caller\'s descriptor; theta and scaleRho are internal', function()
      local n = loihiNeuron{scaleRho = 3}
      local sl = snn.loihi(n, SIM)
      assert.is_nil(n.theta)
      assert.are.equal(3, n.scaleRho)
      assert.are.equal(5120, sl.neuron.theta)
      assert.are.equal(3 / 195, sl.neuron.scaleRho)
      local netParams = {neuron = n, simulation = SIM,
         training = {error = {type = 'SpikeTime'}}}
      local err = snn.loss(netParams, snn.loihi)
      local sl2 = snn.loihi(n, SIM)
      assert.are.equal(3 / 195, sl2.neuron.scaleRho) -- not divided twice
      assert.are.equal(3, n.scaleRho)
      assert.are.same(sl.srmKernel:totable(), err.slayer.srmKernel:totable())
   end)
end)

describe('snn.loihi integer dynamics (SPEC 15.5) against an independent model', function()
   before_each(function() snn.manualSeed(1234) end) -- the same draws whatever ran before
   it('matches spikes, voltage and current exactly over the reference\'s parameter ranges', function()
      math.randomseed(6)
      local total = 0
      for trial = 1, 40 do
         local n = loihiNeuron{vThMant = math.random(1, 500), vDecay = math.random(0, 4096),
            iDecay = math.random(0, 4096), refDelay = math.random(1, 17), wgtExp = math.random(-4, 4)}
         if trial % 5 == 0 then n.vDecay = ({0, 4096})[trial % 2 + 1] end
         if trial % 7 == 0 then n.iDecay = ({0, 4096})[trial % 2 + 1] end
         local Ts = ({1, 0.5, 0.1})[trial % 3 + 1]
         local rows = weightedSpikes(8, 24, 120, 0.1, 256, Ts)
         total = total + checkExact(n, rows, Ts, 'trial ' .. trial)
      end
      assert.is_true(total > 100) -- the comparison covered spiking neurons
   end)

   it('reproduces the reference\'s test_slayerLoihi002 check (64 x 128, Bernoulli 0.2, 200 bins)', function()
      math.randomseed(2)
      for _, refDelay in ipairs({math.random(2, 17), 2, 17}) do
         local rows = weightedSpikes(64, 128, 200, 0.2, 10, 1)
         local n = loihiNeuron{refDelay = refDelay, scaleRho = 768}
         local spikes, ref = checkExact(n, rows, 1, 'refDelay ' .. refDelay)
         assert.is_true(spikes > 64)
         -- refractoriness was exercised: no two spikes closer than refDelay
         for _, m in ipairs(ref) do
            local last
            for t = 1, #m.S do
               if m.S[t] == 1 then
                  if last then assert.is_true(t - last >= refDelay) end
                  last = t
               end
            end
         end
      end
   end)

   it('wraps around in 32 bits where the decay product or the state overflow', function()
      -- iDecay 1024: |u| * 3072 passes 2^32 at |u| > 1.4e6; iDecay 0: at 2^20
      for _, iDecay in ipairs({1024, 0, 1}) do
         for _, sign in ipairs({1, -1}) do
            local x = {}
            for t = 1, 60 do x[t] = sign * (t % 3 == 0 and 30000 or 4000) end
            local n = loihiNeuron{iDecay = iDecay, vDecay = 128, vThMant = 2 ^ 25 - 1}
            local _, ref = checkExact(n, {x}, 1, 'iDecay ' .. iDecay)
            local wrapped = false -- some decay product reached 2^32
            for t = 1, 59 do
               if math.abs(ref[1].U[t]) * (4096 - iDecay) >= TWO32 then wrapped = true end
            end
            assert.is_true(wrapped, 'iDecay ' .. iDecay .. ': no wrap-around was exercised')
         end
      end
      -- wScale * input past 2^31: the current turns negative for positive inputs
      local x = {0, 300000, 100, 300000, 0, 0, 300000, 5, 5}
      local _, ref = checkExact(loihiNeuron{wgtExp = 7, iDecay = 0, vDecay = 0, vThMant = 2 ^ 25 - 1}, {x}, 1,
         'state wrap')
      local negative = false
      for t = 1, #x do if ref[1].U[t] < 0 or ref[1].V[t] < 0 then negative = true end end
      assert.is_true(negative)
      -- inputs beyond the int32 range saturate, NaN reads as 0
      x = {0, 3e9, -3e9, 0 / 0, 2.9, -2.9, 1e38, -1e38, 16777216, 5}
      checkExact(loihiNeuron{wgtExp = -6, iDecay = 4096, vDecay = 4096}, {x}, 1, 'saturation, wgtExp -6')
      checkExact(loihiNeuron{wgtExp = 3}, {x}, 1, 'saturation, wgtExp 3')
   end)

   it('handles refDelay 1 (may spike in consecutive bins) and refDelay beyond the sample', function()
      local x = {}
      for t = 1, 40 do x[t] = 200 end
      local spikes1, ref1 = checkExact(loihiNeuron{refDelay = 1}, {x}, 1, 'refDelay 1')
      local consecutive = false
      for t = 2, 40 do if ref1[1].S[t] == 1 and ref1[1].S[t - 1] == 1 then consecutive = true end end
      assert.is_true(consecutive)
      local spikesL, refL = checkExact(loihiNeuron{refDelay = 1000}, {x}, 1, 'refDelay 1000')
      assert.are.equal(1, spikesL)
      -- held at 0 after the spike while the current keeps integrating
      local t0
      for t = 1, 40 do if refL[1].S[t] == 1 then t0 = t end end
      for t = t0 + 1, 40 do assert.are.equal(0, refL[1].V[t]) end
      assert.is_true(refL[1].U[40] > 0)
      assert.is_true(spikes1 > spikesL)
   end)

   it('ignores the input at t = 0, truncates toward zero, and marks spikes with V = vDecay', function()
      local sl = snn.loihi(loihiNeuron{vThMant = 1, vDecay = 100}, {Ts = 0.1, tSample = 1})
      -- Ts 0.1: 1e6 * 0.1 ignored at t = 0; 29 * 0.1 -> 2.9 -> 2, -29 * 0.1 -> -2
      local s, V, U = sl:spikeLoihiFull(T.fromtable({1e6, 29, 0, 0, 0, 0, -29, 0, 0, 0}, {1, 1, 1, 1, 10}))
      local u = H.values(U)
      assert.are.equal(0, u[1])
      assert.are.equal(128, u[2])  -- 2 * 64
      local sv, vv = H.values(s), H.values(V)
      assert.are.equal(r32(1 / r32(0.1)), sv[2])
      assert.are.equal(100, vv[2]) -- the vDecay marker
      assert.are.same({0, 0, 0}, {vv[1], sv[1], u[1]})
      assert.are.equal(-128, u[7] - math.floor(u[6] * 3072 / 4096))
   end)

   it('gives the same result for any thread count', function()
      local x = T.randn({4, 64, 1, 1, 200}) * 300
      local sl = snn.loihi(loihiNeuron{refDelay = 3}, {Ts = 1, tSample = 200})
      local prev = snn.getNumThreads()
      snn.setNumThreads(1)
      local s1, V1, U1 = sl:spikeLoihiFull(x)
      snn.setNumThreads(2)
      local s2, V2, U2 = sl:spikeLoihiFull(x)
      snn.setNumThreads(prev)
      assert.are.same(H.values(s1), H.values(s2))
      assert.are.same(H.values(V1), H.values(V2))
      assert.are.same(H.values(U1), H.values(U2))
      assert.is_true(s1:sum():item() > 0)
   end)
end)

describe('snn.loihi spikeLoihi surrogate gradient (SPEC 15.6)', function()
   before_each(function() snn.manualSeed(1234) end) -- the same draws whatever ran before
   -- corr(g * rho(V), kernel, Ts) computed here in doubles
   local function expected(g, V, k, n, Ts, rows, Tn)
      local theta = n.vThMant * 64
      local tau = n.tauRho * theta
      local scale = n.scaleRho / 195
      local d = {}
      for i = 1, #g do d[i] = g[i] * scale / tau * math.exp(-math.abs(V[i] - theta) / tau) end
      local out = {}
      for r = 0, rows - 1 do
         for t = 0, Tn - 1 do
            local acc = 0
            for i = 0, math.min(#k - 1, Tn - 1 - t) do acc = acc + k[i + 1] * d[r * Tn + t + i + 1] end
            out[r * Tn + t + 1] = acc * Ts
         end
      end
      return out
   end

   it('returns the spikes of spikeLoihiFull and back-propagates corr(g * rho(V), psp, Ts)', function()
      for _, Ts in ipairs({1, 0.5}) do
         local n = loihiNeuron{tauRho = 0.5, scaleRho = 2, refDelay = 2}
         local sl = snn.loihi(n, {Ts = Ts, tSample = 150 * Ts})
         local x = (T.randn({2, 3, 1, 1, 150}) * (400 / Ts)):detach():requiresGrad(true)
         local s = sl:spikeLoihi(x)
         local sFull, V = sl:spikeLoihiFull(x)
         assert.are.same(H.values(sFull), H.values(s))
         assert.is_true(s:sum():item() > 0)
         local g = T.randn({2, 3, 1, 1, 150})
         s:backward(g)
         local want = expected(H.values(g), H.values(V), sl.srmKernel:totable(), n, Ts, 6, 150)
         H.assertClose(x.grad, want, 2e-5, 1e-9, 'spikeLoihi gradient')
      end
   end)

   it('is linear in the incoming gradient and vanishes where the voltage is far from theta', function()
      local sl = snn.loihi(loihiNeuron(), {Ts = 1, tSample = 100})
      local x = T.zeros({1, 1, 1, 1, 100}):requiresGrad(true) -- V stays 0: rho = exp(-1) / 5120
      sl:spikeLoihi(x):backward(T.ones({1, 1, 1, 1, 100}))
      local gx = H.values(x.grad)
      -- with g = 1 everywhere the gradient at t is rho(0) * sum of the kernel taps that fit
      local k = sl.srmKernel:totable()
      local rho = (1 / 195) / 5120 * math.exp(-1)
      local tail = 0
      for i = 1, 100 do tail = tail + k[i] end
      assert.is_true(math.abs(gx[1] - rho * tail) < 1e-5 * rho * tail)
      assert.is_true(math.abs(gx[100] - rho * k[1]) < 1e-5 * rho * k[1])
   end)

   it('chains through the quantised dense synapse: dL/dW = sum over n, t of dL/dz * x', function()
      local sl = snn.loihi(loihiNeuron(), {Ts = 1, tSample = 80})
      local fc = sl:dense(6, 3)
      local x = T.bernoulli({2, 6, 1, 1, 80}, 0.3)
      local z = fc(x)
      local zd = z:detach():requiresGrad(true)
      local g = T.randn({2, 3, 1, 1, 80})
      sl:spikeLoihi(zd):backward(g)
      sl:spikeLoihi(z):backward(g)
      -- dL/dW[o, i] = sum_{n,t} dL/dz[n, o, t] * x[n, i, t]
      local gz, xv = H.values(zd.grad), H.values(x)
      local want = {}
      for o = 0, 2 do
         for i = 0, 5 do
            local acc = 0
            for nn = 0, 1 do
               for t = 0, 79 do acc = acc + gz[(nn * 3 + o) * 80 + t + 1] * xv[(nn * 6 + i) * 80 + t + 1] end
            end
            want[o * 6 + i + 1] = acc
         end
      end
      H.assertClose(fc.weight.grad, want, 1e-4, 1e-9, 'weight gradient')
   end)
end)

describe('snn.loihi smooth paths: finite differences', function()
   before_each(function() snn.manualSeed(1234) end) -- the same draws whatever ran before
   it('psp with the Loihi kernel and the spikeTime loss built with snn.loihi', function()
      local sl = snn.loihi(loihiNeuron(), {Ts = 0.5, tSample = 20})
      local x = (T.rand({2, 3, 1, 1, 40}) * 4):detach():requiresGrad(true)
      -- linear: wide steps keep float32 rounding out of the differences
      assert.is_true(H.gradcheck(function(a) return sl:psp(a) end, {x}, {eps = 1, rtol = 1e-3, atol = 1e-2}))
      local err = snn.loss({neuron = loihiNeuron(), simulation = {Ts = 0.5, tSample = 20},
         training = {error = {type = 'SpikeTime'}}}, snn.loihi)
      local desired = T.bernoulli({2, 3, 1, 1, 40}, 0.1) * 2
      local out = (T.rand({2, 3, 1, 1, 40}) * 0.02):detach():requiresGrad(true)
      assert.is_true(H.gradcheck(function(a) return err:spikeTime(a, desired) end, {out},
         {eps = 0.5, rtol = 1e-3, atol = 1})) -- quadratic: central differences are exact up to rounding
   end)

   it('the spikeLoihi gradient is the exact gradient of the frozen-voltage surrogate sum g rho(V) psp(x)', function()
      -- F(x) = sum_t g[t] rho(V[t]) Ts * sum_i k[i] x[t - i] * Ts, with V
      -- fixed at the recorded voltage: central differences of F in each
      -- input element must give spikeLoihi's backward
      local n = loihiNeuron{refDelay = 2}
      local sl = snn.loihi(n, {Ts = 1, tSample = 60})
      local x = (T.randn({1, 2, 1, 1, 60}) * 500):detach():requiresGrad(true)
      local g = T.randn({1, 2, 1, 1, 60})
      sl:spikeLoihi(x):backward(g)
      local _, V = sl:spikeLoihiFull(x)
      local w = (g * (-(V - 5120):abs() / 5120):exp() * ((1 / 195) / 5120)):detach()
      local F = function(a) return (sl:psp(a) * w):sum() end
      local xv, gx = x:detach():clone(), H.values(x.grad)
      local d = xv:data()
      for _, i in ipairs({0, 7, 30, 59, 61, 90, 119}) do
         local orig = d[i]
         d[i] = orig + 1
         local fp = snn.noGrad(function() return F(xv):item() end)
         d[i] = orig - 1
         local fm = snn.noGrad(function() return F(xv):item() end)
         d[i] = orig
         local num = (fp - fm) / 2
         assert.is_true(math.abs(num - gx[i + 1]) <= 1e-3 * math.abs(gx[i + 1]) + 1e-7,
            string.format('element %d: finite difference %.6g, backward %.6g', i, num, gx[i + 1]))
      end
   end)
end)

describe('snn.loihi synapses (SPEC 15.7)', function()
   before_each(function() snn.manualSeed(1234) end) -- the same draws whatever ran before
   it('quantises dense/conv/convTranspose weights to even integers, straight through in backward', function()
      local sl = snn.loihi(loihiNeuron(), {Ts = 1, tSample = 20})
      local fc = sl:dense(16, 4)
      -- weightScale 100: uniform on [-100/sqrt(16), 100/sqrt(16)]
      local w = H.values(fc.weight)
      local wmax = 0
      for _, v in ipairs(w) do wmax = math.max(wmax, math.abs(v)) end
      assert.is_true(wmax <= 25 and wmax > 10)
      local x = T.bernoulli({2, 16, 1, 1, 20}, 0.5)
      local y = fc(x)
      -- the forward uses round-half-even(w / 2) * 2
      local wq = {}
      for i, v in ipairs(w) do
         local h = r32(v / 2)
         local r = math.floor(h)
         if h - r > 0.5 or (h - r == 0.5 and r % 2 == 1) then r = r + 1 end
         wq[i] = 2 * r
      end
      local ref = require('slayer.synapse').Dense(16, 4, 1)
      ref.weight = T.fromtable(wq, fc.weight:shape())
      H.assertClose(y, ref(x), 0, 0, 'quantised dense')
      -- straight through: dL/dw = dL/dw_q
      local R = T.randn(y:shape())
      ;(y * R):sum():backward()
      local wql = T.fromtable(wq, fc.weight:shape()):requiresGrad(true)
      ref.weight = wql
      ;(ref(x) * R):sum():backward()
      H.assertClose(fc.weight.grad, wql.grad, 1e-6, 1e-9, 'straight-through gradient')
      -- quantize = false keeps the raw weights
      local raw = sl:dense(16, 4, 7, false)
      assert.is_nil(raw.preHookFx)
      local cv = sl:conv(2, 3, 3)
      local yc = cv(T.rand({1, 2, 5, 5, 4}))
      assert.are.same({1, 3, 3, 3, 4}, yc:shape())
      for _, v in ipairs(H.values(cv.preHookFx(cv.weight))) do assert.are.equal(0, v % 2) end
      local ct = sl:convTranspose(2, 3, 3)
      assert.is_function(ct.preHookFx)
   end)

   it('defaults dense, conv and convTranspose to weightScale 100 (the same weights as an explicit 100)', function()
      local sl = snn.loihi(loihiNeuron(), {Ts = 1, tSample = 20})
      local function weightsOf(make)
         snn.manualSeed(77)
         return H.values(make().weight)
      end
      local cases = {
         {'dense', function() return sl:dense(16, 4) end, function(s) return sl:dense(16, 4, s) end},
         {'conv', function() return sl:conv(2, 3, 3) end,
            function(s) return sl:conv(2, 3, 3, nil, nil, nil, nil, s) end},
         {'convTranspose', function() return sl:convTranspose(2, 3, 3) end,
            function(s) return sl:convTranspose(2, 3, 3, nil, nil, nil, nil, s) end},
      }
      for _, c in ipairs(cases) do
         local name, withDefault, withScale = c[1], c[2], c[3]
         local default = weightsOf(withDefault)
         assert.are.same(weightsOf(function() return withScale(100) end), default, name)
         assert.are_not.same(weightsOf(function() return withScale(10) end), default, name)
      end
   end)

   it('pools and unpools with the weight quantise(1.1 theta / maxPsp, 2) = 28', function()
      local sl = snn.loihi(loihiNeuron(), {Ts = 1, tSample = 5})
      assert.are.equal(28, sl:poolWeight()) -- 1.1 * 5120 / 195 = 28.88 -> 14.44 -> 14 -> 28
      local x = T.ones({1, 1, 4, 4, 5})
      local y = sl:pool(2)(x)
      assert.are.same({1, 1, 2, 2, 5}, y:shape())
      for _, v in ipairs(H.values(y)) do assert.are.equal(4 * 28, v) end
      local up = sl:unpool(2)(T.ones({1, 1, 2, 2, 5}))
      for _, v in ipairs(H.values(up)) do assert.are.equal(28, v) end
      -- vThMant 5: 1.1 * 320 / 195 = 1.805 -> 0.90 -> 1 -> 2
      assert.are.equal(2, snn.loihi(loihiNeuron{vThMant = 5}, SIM):poolWeight())
   end)

   it('keeps the snn.layer methods: psp with the Loihi kernel, spike with theta = vThMant * 64', function()
      local sl = snn.loihi(loihiNeuron(), {Ts = 1, tSample = 30})
      local x = T.zeros({1, 1, 1, 1, 30})
      x:data()[3] = 1
      local a = H.values(sl:psp(x))
      local k = sl.srmKernel:totable()
      for t = 3, 29 do assert.are.equal(k[t - 2], a[t + 1]) end -- a spike at bin 3: psp[t] = kernel[t - 3]
      assert.are.same({0, 0, 0}, {a[1], a[2], a[3]})
      local u = T.fromtable({0, 5119, 5120, 100, 0}, {1, 1, 1, 1, 5})
      local s = H.values(sl:spike(u))
      assert.are.same({0, 0, 1, 0, 0}, s)
      -- the refractory dip after the spike at bin 2, and getVoltage's marks
      local uv = H.values(u)
      assert.are.equal(100 - 10240, uv[4])
      local sl3 = snn.loihi(loihiNeuron{refDelay = 3}, {Ts = 1, tSample = 5})
      local u3 = T.fromtable({0, 5121, 0, 0, 0}, {1, 1, 1, 1, 5})
      sl3:spike(u3)
      local gv = H.values(sl3:getVoltage(u3))
      assert.are.same({0, 5121, 5121, 5121, -10240}, gv)
      assert.are.same({1, 5}, sl3:getVoltage(u3):shape())
      assert.are.equal('snn.loihi', sl.__typename)
      assert.is_true(snn.nn.isInstance(sl, snn.layer))
   end)

   it('marks in getVoltage exactly the potentials at or below -500 theta, with theta + 1', function()
      local sl = snn.loihi(loihiNeuron(), {Ts = 1, tSample = 5})
      local theta = 80 * 64
      local edge = -500 * theta -- -2,560,000: whole numbers this size are exact in float32
      local u = T.fromtable({edge + 1, edge, edge - 1, 0, -theta}, {1, 1, 1, 1, 5})
      assert.are.same({edge + 1, theta + 1, theta + 1, 0, -theta}, sl:getVoltage(u):totable())
   end)

   it('builds snn.loss with the Loihi psp kernel (spikeTime of one spike = Ts/2 * sum kernel^2)', function()
      local netParams = {neuron = loihiNeuron(), simulation = {Ts = 1, tSample = 200},
         training = {error = {type = 'SpikeTime'}}}
      local err = snn.loss(netParams, snn.loihi)
      local out = T.zeros({1, 1, 1, 1, 200})
      out:data()[10] = 1
      local E = err:spikeTime(out, T.zeros({1, 1, 1, 1, 200})):item()
      local want = 0
      for _, v in ipairs(snn.loihi.pspKernel(netParams.neuron, 200)) do want = want + v * v end
      want = want / 2
      assert.is_true(math.abs(E - want) < 1e-6 * want)
   end)
end)

describe('snn.loihi descriptor checks', function()
   before_each(function() snn.manualSeed(1234) end) -- the same draws whatever ran before
   local function expectError(over, pattern, remove)
      local n = loihiNeuron(over)
      if remove then n[remove] = nil end
      local ok, err = pcall(snn.loihi, n, SIM)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(pattern, 1, true), 'message was: ' .. tostring(err))
      assert.is_truthy(tostring(err):find('loihi:', 1, true))
   end

   it('names the missing field', function()
      for _, k in ipairs({'vThMant', 'vDecay', 'iDecay', 'refDelay', 'wgtExp', 'tauRho', 'scaleRho'}) do
         expectError(nil, "no '" .. k .. "'", k)
      end
   end)

   it('rejects non-integer mantissas, decays, delays and exponents', function()
      expectError({vThMant = 80.5}, 'neuron.vThMant must be an integer, got 80.5')
      expectError({vDecay = 12.25}, 'neuron.vDecay must be an integer, got 12.25')
      expectError({iDecay = '1024'}, 'neuron.iDecay must be an integer, got 1024')
      expectError({refDelay = 1.5}, 'neuron.refDelay must be an integer, got 1.5')
      expectError({wgtExp = 0.5}, 'neuron.wgtExp must be an integer, got 0.5')
   end)

   it('rejects out-of-range values', function()
      expectError({vDecay = 4097}, 'neuron.vDecay must lie in [0, 4096]')
      expectError({iDecay = -1}, 'neuron.iDecay must lie in [0, 4096]')
      expectError({refDelay = 0}, 'neuron.refDelay must lie in [1,')
      expectError({vThMant = 0}, 'neuron.vThMant must lie in [1,')
      expectError({wgtExp = -7}, 'neuron.wgtExp must lie in [-6, 7]')
      expectError({tauRho = 0}, 'neuron.tauRho must be positive')
      expectError({type = 'SRMALPHA'}, "neuron.type must be 'LOIHI'")
   end)

   it('rejects bad inputs with an error naming the op', function()
      local sl = snn.loihi(loihiNeuron(), SIM)
      local ok, err = pcall(sl.spikeLoihi, sl, T.zeros({2, 3}))
      assert.is_false(ok)
      assert.is_truthy(err:find('spikeLoihi: expected a 5-D', 1, true))
      ok, err = pcall(sl.spikeLoihiFull, sl, 'x')
      assert.is_false(ok)
      assert.is_truthy(err:find('spikeLoihiFull', 1, true))
      ok, err = pcall(sl.dense, sl, 4, 2, 100, 'yes')
      assert.is_false(ok)
      assert.is_truthy(err:find('dense: expected quantize', 1, true))
   end)
end)

describe('snn.loihi.export', function()
   before_each(function() snn.manualSeed(1234) end) -- the same draws whatever ran before
   local function readLines(path)
      local out = {}
      for line in io.lines(path) do out[#out + 1] = line end
      return out
   end

   local function tempDir()
      local d = os.tmpname()
      os.remove(d)
      return d .. '-loihi'
   end

   local function removeDir(dir, files)
      for _, f in ipairs(files) do os.remove(dir .. '/' .. f) end
      os.remove(dir)
   end

   local function buildNet()
      local sl = snn.loihi(loihiNeuron(), {Ts = 1, tSample = 30})
      local Net = snn.class('ExportNet', snn.Module)
      function Net:__init()
         snn.Module.__init(self)
         self.slayer = sl
         self.fc1 = sl:dense({4, 4, 2}, 6)
         self.delay1 = sl:delay(6)
         self.fc2 = sl:dense(6, 3)
         self.pool1 = sl:pool(2)
      end
      function Net:forward(x)
         local s = sl:delayShift(sl:spikeLoihi(self.fc1(self.pool1(x))), 1)
         return sl:delayShift(sl:spikeLoihi(self.fc2(self.delay1(s))), 1)
      end
      return Net()
   end

   it('writes quantised integer weights, floored delays and a JSON summary', function()
      local net = buildNet()
      -- one training step, so the exported weights are trained ones
      local x = T.bernoulli({2, 2, 8, 8, 30}, 0.3)
      local opt = snn.optim.Nadam(net:parameters(), {lr = 0.5})
      local out = net(x)
      ;(out * T.randn(out:shape())):sum():backward()
      opt:step()
      net.delay1.delay:copy(T.fromtable({0.3, 1.7, 2.0, 5.9, 0, 3.2}, {6, 1, 1}))
      local dir = tempDir()
      local summary = snn.loihi.export(net, dir)
      local files = {'fc1.txt', 'fc2.txt', 'pool1.txt', 'delay1.delay.txt', 'network.json'}
      for _, name in ipairs({'fc1', 'fc2'}) do
         local m = net[name]
         local want = H.values(snn.quantize(m.weight:detach(), 2))
         local got = readLines(dir .. '/' .. name .. '.txt')
         assert.are.equal(#want, #got)
         for i = 1, #want do
            assert.is_truthy(got[i]:match('^%-?%d+$'), 'not an integer line: ' .. got[i])
            assert.are.equal(want[i], tonumber(got[i]))
         end
      end
      assert.are.same({'28', '28', '28', '28'}, readLines(dir .. '/pool1.txt'))
      assert.are.same({'0', '1', '2', '5', '0', '3'}, readLines(dir .. '/delay1.delay.txt'))
      local json = table.concat(readLines(dir .. '/network.json'), '\n')
      for _, needle in ipairs({'"file": "fc1.txt"', '"file": "delay1.delay.txt"', '"type": "pool"',
         '"theta": 5120', '"maxPsp": 195', '"vThMant": 80', '"outFeatures": 3'}) do
         assert.is_truthy(json:find(needle, 1, true), 'network.json lacks ' .. needle)
      end
      -- layer order: the module walk order (fields sorted by name)
      local names = {}
      for i, l in ipairs(summary.layers) do names[i] = l.name end
      assert.are.same({'delay1.delay', 'fc1', 'fc2', 'pool1'}, names)
      assert.are.same({6, 2, 4, 4, 1}, summary.layers[2].weightShape)
      assert.is_true(json:find('"name": "delay1.delay"', 1, true) < json:find('"name": "fc1"', 1, true))
      assert.is_nil(io.open(dir .. '/network.json.tmp'))
      -- opts.order lists the layers in forward order
      local s2 = snn.loihi.export(net, dir, {order = {'pool1', 'fc1', 'delay1.delay', 'fc2'}})
      assert.are.equal('pool1', s2.layers[1].name)
      assert.are.equal('fc2', s2.layers[4].name)
      json = table.concat(readLines(dir .. '/network.json'), '\n')
      assert.is_true(json:find('"name": "fc1"', 1, true) < json:find('"name": "fc2"', 1, true))
      removeDir(dir, files)
   end)

   it('writes a weight-normalised layer\'s weight v * g / ||v|| after the last optimizer step', function()
      local net = buildNet()
      snn.weightNorm(net.fc2)
      local x = T.bernoulli({2, 2, 8, 8, 30}, 0.3)
      local opt = snn.optim.Nadam(net:parameters(), {lr = 0.5})
      local out = net(x)
      ;(out * T.randn(out:shape())):sum():backward()
      local before = net.fc2.weight:clone()
      opt:step()
      -- the weight the step's g and v give, computed here
      local v, g = net.fc2.weight_v:detach(), net.fc2.weight_g:detach()
      local norm = v:reshape({3, 6}):square():sum(2):sqrt():reshape({3, 1, 1, 1, 1})
      local want = H.values(snn.quantize(v * (g / norm), 2))
      assert.is_true(T.maxAbsDiff(snn.quantize(before, 2), snn.quantize(v * (g / norm), 2)) > 0)
      local dir = tempDir()
      snn.loihi.export(net, dir)
      local got = readLines(dir .. '/fc2.txt')
      assert.are.equal(#want, #got)
      for i = 1, #want do assert.are.equal(want[i], tonumber(got[i])) end
      removeDir(dir, {'fc1.txt', 'fc2.txt', 'pool1.txt', 'delay1.delay.txt', 'network.json'})
   end)

   it('writes the weights it checked when the collector runs before the files are written', function()
      -- the quantised weights are fresh tensors only the export holds; a collection between
      -- checking and writing them (here forced, in a large export the allocations bring it on)
      -- must not free them: a freed block gets the cache's list link in its first bytes
      local net = buildNet()
      snn.noGrad(function()
         net.fc1.weight:fill(3.2)
         net.fc2.weight:fill(-5.1)
      end)
      local utils = require 'slayer.utils'
      local writeFiles = utils.writeFiles
      utils.writeFiles = function(...)
         collectgarbage()
         collectgarbage()
         return writeFiles(...)
      end
      local dir = tempDir()
      local ok, err = pcall(snn.loihi.export, net, dir)
      utils.writeFiles = writeFiles
      assert(ok, err)
      for name, want in pairs({fc1 = '4', fc2 = '-6'}) do
         local got = readLines(dir .. '/' .. name .. '.txt')
         assert.are.equal(net[name].weight:numel(), #got)
         for i = 1, #got do assert.are.equal(want, got[i], name .. ' line ' .. i) end
      end
      removeDir(dir, {'fc1.txt', 'fc2.txt', 'pool1.txt', 'delay1.delay.txt', 'network.json'})
   end)

   it('refuses non-integer weights and bad arguments with clear errors', function()
      local sl = snn.loihi(loihiNeuron(), {Ts = 1, tSample = 30})
      local Net = snn.class('RawNet', snn.Module)
      function Net:__init() snn.Module.__init(self); self.fc = sl:dense(5, 2, 100, false) end
      local dir = tempDir()
      local ok, err = pcall(snn.loihi.export, Net(), dir)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('holds the value', 1, true) and tostring(err):find('integer weights'))
      assert.is_nil(io.open(dir .. '/fc.txt'))
      removeDir(dir, {})
      -- a later layer's bad value leaves no file of the earlier ones; 1e30 is not written as an int64
      local net = buildNet()
      snn.noGrad(function() net.pool1.weight:fill(1e30) end)
      ok, err = pcall(snn.loihi.export, net, dir)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find('pool1.weight holds the value 1.00000002e+30', 1, true), err)
      for _, f in ipairs({'delay1.delay.txt', 'fc1.txt', 'fc2.txt', 'network.json'}) do
         assert.is_nil(io.open(dir .. '/' .. f), f .. ' was written')
      end
      removeDir(dir, {})
      ok, err = pcall(snn.loihi.export, {}, dir)
      assert.is_false(ok)
      assert.is_truthy(err:find('export: expected a network module', 1, true))
      ok, err = pcall(snn.loihi.export, buildNet(), dir, {order = {'nope'}})
      assert.is_false(ok)
      assert.is_truthy(err:find("names 'nope'", 1, true))
   end)
end)
