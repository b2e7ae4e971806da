--[[
Three stacked Loihi blocks (the auto network's dense -> spikeLoihi ->
delayShift(1), 20 -> 8 -> 8 -> 3, T = 50) against a hand computation from
the reference's formulas in plain Lua doubles: the integer neuron, the
surrogate gradient on the voltage correlated with the Loihi psp kernel,
delayShift's gradient shifted back, straight-through quantised weights and
the numSpikes loss.  The gradient that reaches a block's input spikes
(only a second hidden layer needs it) is checked through the weight
gradients of the layers below it.  Written while looking for why
examples/nmnist-auto trains more slowly than the reference's log: it found
no difference (see that example's README).
]]
local snn = require 'slayer'
local T = snn.tensor

-- returns the forward's largest difference, the spikes per layer, both
-- losses, and per layer the largest weight-gradient difference and scale
local function stackCheck(seed, sparse)
   local density, wmult = 0.3, 3
   snn.manualSeed(seed)
   local Tn, N = 50, 2
   local dims = {20, 8, 8, 3}
   local stopBin = math.floor(Tn * 0.8)
   local netParams = {
      simulation = {Ts = 1, tSample = Tn},
      neuron = {type = 'LOIHI', vThMant = 80, vDecay = 128, iDecay = 1024, refDelay = 1, wgtExp = 0, tauRho = 1,
         scaleRho = 1},
      layer = {{dim = dims[1] .. 'x1x1'}, {dim = dims[2]}, {dim = dims[3]}, {dim = dims[4]}},
      training = {error = {type = 'NumSpikes', tgtSpikeRegion = {start = 0, stop = stopBin},
         tgtSpikeCount = {[true] = 10, [false] = 3}}},
   }
   local net = snn.auto.loihi.Network(netParams, {verbose = false})
   local err = snn.loss(netParams, snn.loihi)
   -- scale the weights so that every layer spikes
   local blocks = {}
   for _, b in ipairs(net.blocks) do if b.weightOp then blocks[#blocks + 1] = b end end
   for _, b in ipairs(blocks) do b.weightOp.weight:mul_(wmult) end
   if sparse ~= nil then for _, b in ipairs(blocks) do b.weightOp.sparse = sparse end end

   local x = T.rand({N, 1, 1, dims[1], Tn}):lt(density)
   local tv = {}
   for n = 1, N do for o = 1, dims[4] do tv[#tv + 1] = (o == n) and 1 or 0 end end
   local target = T.fromtable(tv, {N, dims[4], 1, 1, 1})

   -- autograd
   local out = net(x)
   local lossT = err:numSpikes(out, target)
   lossT:backward()

   local sl = net.slayer
   local theta = sl.neuron.theta
   local rhoScale = sl.neuron.scaleRho -- scaleRho / maxPsp
   local tau = sl.neuron.tauRho * theta
   local eps = sl.srmKernel:totable()
   local K = #eps
   local Ts = 1

   local function rint2(w) -- round(w / 2) * 2, half to even
      local h = w / 2
      local f = math.floor(h)
      local d = h - f
      local r
      if d > 0.5 then r = f + 1 elseif d < 0.5 then r = f else r = (f % 2 == 0) and f or f + 1 end
      return r * 2
   end

   local function mat(t, O, I) -- weight (O, I, 1, 1, 1) -> quantised [o][i]
      local v = t:totable()
      local m = {}
      for o = 1, O do
         m[o] = {}
         for i = 1, I do m[o][i] = rint2(v[(o - 1) * I + i]) end
      end
      return m
   end

   local W = {}
   for l = 1, 3 do W[l] = mat(blocks[l].weightOp.weight, dims[l + 1], dims[l]) end

   -- input [n][i][t]
   local xv = x:totable()
   local inp = {}
   for n = 1, N do
      inp[n] = {}
      for i = 1, dims[1] do
         inp[n][i] = {}
         for t = 1, Tn do inp[n][i][t] = xv[((n - 1) * dims[1] + (i - 1)) * Tn + t] end
      end
   end

   local function dense(Wm, y, O, I)
      local a = {}
      for n = 1, N do
         a[n] = {}
         for o = 1, O do
            a[n][o] = {}
            for t = 1, Tn do a[n][o][t] = 0 end
         end
         for i = 1, I do
            local yi = y[n][i]
            for t = 1, Tn do
               local v = yi[t]
               if v ~= 0 then
                  for o = 1, O do a[n][o][t] = a[n][o][t] + Wm[o][i] * v end
               end
            end
         end
      end
      return a
   end

   local function decay(z, keep)
      local sgn = z >= 0 and 1 or -1
      return sgn * math.floor(sgn * z * keep / 4096)
   end

   local function loihi(a, O) -- reference getSpikesKernel, refDelay 1
      local s, V = {}, {}
      for n = 1, N do
         s[n], V[n] = {}, {}
         for o = 1, O do
            local sn, vn = {}, {}
            local u, v = 0, 0
            sn[1], vn[1] = 0, 0
            for t = 2, Tn do
               local ai = a[n][o][t] * Ts
               ai = ai >= 0 and math.floor(ai) or math.ceil(ai)
               u = decay(u, 4096 - 1024) + 64 * ai
               local vt = decay(v, 4096 - 128) + u
               local spike = vt > theta and 1 or 0
               v = spike == 1 and 0 or vt
               sn[t] = spike / Ts
               vn[t] = spike == 1 and 128 or v
            end
            s[n][o], V[n][o] = sn, vn
         end
      end
      return s, V
   end

   local function shift(y, O, d) -- out[t] = y[t - d]
      local r = {}
      for n = 1, N do
         r[n] = {}
         for o = 1, O do
            r[n][o] = {}
            for t = 1, Tn do
               local src = t - d
               r[n][o][t] = (src >= 1 and src <= Tn) and y[n][o][src] or 0
            end
         end
      end
      return r
   end

   local function corr(g) -- x'[t] = Ts * sum_i eps[i] g[t + i]
      local r = {}
      for t = 1, Tn do
         local s = 0
         for i = 0, K - 1 do
            if t + i <= Tn then s = s + eps[i + 1] * g[t + i] end
         end
         r[t] = s * Ts
      end
      return r
   end

   local function conv(xs)
      local r = {}
      for t = 1, Tn do
         local s = 0
         for i = 0, math.min(K - 1, t - 1) do s = s + eps[i + 1] * xs[t - i] end
         r[t] = s * Ts
      end
      return r
   end

   local a, s, V, y = {}, {}, {}, {[0] = inp}
   for l = 1, 3 do
      a[l] = dense(W[l], y[l - 1], dims[l + 1], dims[l])
      s[l], V[l] = loihi(a[l], dims[l + 1])
      y[l] = shift(s[l], dims[l + 1], 1)
   end

   -- forward check
   local ov = out:totable()
   local fwdDiff, counts = 0, {0, 0, 0}
   for n = 1, N do
      for o = 1, dims[4] do
         for t = 1, Tn do fwdDiff = math.max(fwdDiff, math.abs(ov[((n - 1) * dims[4] + o - 1) * Tn + t] - y[3][n][o][t])) end
      end
   end
   for l = 1, 3 do
      for n = 1, N do for o = 1, dims[l + 1] do for t = 1, Tn do counts[l] = counts[l] + s[l][n][o][t] end end end
   end
   -- loss
   local start, stop = 0, stopBin
   local tgt = {[true] = 10, [false] = 3}
   local E = 0
   local gout = {}
   for n = 1, N do
      gout[n] = {}
      for o = 1, dims[4] do
         local o3 = y[3][n][o]
         local actual = 0
         for t = start + 1, stop do actual = actual + o3[t] end
         actual = actual * Ts
         local isT = tv[(n - 1) * dims[4] + o] == 1
         local c = (actual - tgt[isT]) / (stop - start)
         local xs = {}
         for t = 1, Tn do xs[t] = (t > start and t <= stop) and 0 or o3[t] end
         local p = conv(xs)
         local e = {}
         for t = 1, Tn do
            e[t] = p[t] + ((t > start and t <= stop) and c or 0)
            E = E + 0.5 * e[t] ^ 2 * Ts
         end
         local ge = {}
         for t = 1, Tn do ge[t] = e[t] * Ts end
         gout[n][o] = corr(ge)
      end
   end
   -- backward
   local gy = gout
   local gW = {}
   for l = 3, 1, -1 do
      local O, I = dims[l + 1], dims[l]
      -- delayShift backward: shift by -1
      local gs = shift(gy, O, -1)
      -- spikeLoihi backward
      local ga = {}
      for n = 1, N do
         ga[n] = {}
         for o = 1, O do
            local gr = {}
            for t = 1, Tn do
               gr[t] = gs[n][o][t] * rhoScale / tau * math.exp(-math.abs(V[l][n][o][t] - theta) / tau)
            end
            ga[n][o] = corr(gr)
         end
      end
      -- dense backward (quantised weights forward, straight through)
      gW[l] = {}
      for o = 1, O do
         gW[l][o] = {}
         for i = 1, I do
            local sacc = 0
            for n = 1, N do
               local yi, go = y[l - 1][n][i], ga[n][o]
               for t = 1, Tn do if yi[t] ~= 0 then sacc = sacc + go[t] * yi[t] end end
            end
            gW[l][o][i] = sacc
         end
      end
      local gin = {}
      if l > 1 then for n = 1, N do
         gin[n] = {}
         for i = 1, I do
            gin[n][i] = {}
            for t = 1, Tn do
               local sacc = 0
               for o = 1, O do sacc = sacc + W[l][o][i] * ga[n][o][t] end
               gin[n][i][t] = sacc
            end
         end
      end end
      gy = gin
   end

   local res = {fwdDiff = fwdDiff, counts = counts, loss = lossT:item(), lossHand = E, layers = {}}
   for l = 1, 3 do
      local g = blocks[l].weightOp.weight.grad:totable()
      local O, I = dims[l + 1], dims[l]
      local worst, scale = 0, 0
      for o = 1, O do
         for i = 1, I do
            local want = gW[l][o][i]
            scale = math.max(scale, math.abs(want))
            worst = math.max(worst, math.abs(g[(o - 1) * I + i] - want))
         end
      end
      res.layers[l] = {worst = worst, scale = scale}
   end
   return res
end

describe('three stacked Loihi blocks', function()
   for _, case in ipairs({{1}, {2}, {3, true}, {4, false}}) do
      local seed, sparse = case[1], case[2]
      it(('match a hand computation of the forward pass, loss and weight gradients (seed %d, %s)'):format(seed,
         sparse == nil and 'paths as chosen' or (sparse and 'event lists forced' or 'GEMMs forced')), function()
         local r = stackCheck(seed, sparse)
         assert.are.equal(0, r.fwdDiff)
         for l = 1, 3 do assert.is_true(r.counts[l] > 0, 'layer ' .. l .. ' is silent') end
         assert.is_true(math.abs(r.loss - r.lossHand) <= 1e-5 * math.abs(r.lossHand), ('loss %.9g against %.9g'):format(
            r.loss, r.lossHand))
         for l = 1, 3 do
            local g = r.layers[l]
            assert.is_true(g.scale > 0, 'layer ' .. l .. ' has no gradient')
            assert.is_true(g.worst <= 1e-5 * g.scale, ('layer %d: weight gradient off by %.3g of %.3g'):format(l,
               g.worst, g.scale))
         end
      end)
   end
end)
