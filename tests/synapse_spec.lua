-- synaptic layers of snn.layer (SPEC.md 9, reference tests 001, 007, 008, 013)
local snn = require 'slayer'
local H = require 'support.helpers'
local T = snn.tensor

local sl = snn.layer({type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1, scaleRho = 1},
   {Ts = 1, tSample = 300})

-- element (n, c, h, w, t) of a flat NCHWT table with shape s (1-based)
local function at(v, s, n, c, h, w, t)
   return v[((((n - 1) * s[2] + c - 1) * s[3] + h - 1) * s[4] + w - 1) * s[5] + t]
end

-- explicit per-time-bin 2-D convolution
local function refConv(x, xs, w, ws, st, pad, dil, groups)
   local N, Cn, Hh, W, Tn = unpack(xs)
   local O, cin, kh, kw = ws[1], ws[2], ws[3], ws[4]
   local OH = math.floor((Hh + 2 * pad[1] - dil[1] * (kh - 1) - 1) / st[1]) + 1
   local OW = math.floor((W + 2 * pad[2] - dil[2] * (kw - 1) - 1) / st[2]) + 1
   local out, og = {}, O / groups
   for n = 1, N do for o = 1, O do for oh = 1, OH do for ow = 1, OW do for t = 1, Tn do
      local g = math.floor((o - 1) / og)
      local s = 0
      for ci = 1, cin do
         local c = g * cin + ci
         for i = 1, kh do for j = 1, kw do
            local ih = (oh - 1) * st[1] - pad[1] + (i - 1) * dil[1] + 1
            local iw = (ow - 1) * st[2] - pad[2] + (j - 1) * dil[2] + 1
            if ih >= 1 and ih <= Hh and iw >= 1 and iw <= W then
               s = s + w[(((o - 1) * cin + ci - 1) * kh + i - 1) * kw + j] * at(x, xs, n, c, ih, iw, t)
            end
         end end
      end
      out[#out + 1] = s
   end end end end end
   return out, {N, O, OH, OW, Tn}
end

describe('dense', function()
   it('is a matrix product per time bin, width-first inFeatures (test 001)', function()
      local fc = sl:dense({34, 24, 2}, 30)
      assert.are.same({30, 2, 24, 34, 1}, fc.weight:shape())
      local x = T.randn({2, 2, 24, 34, 4})
      local y = fc(x)
      assert.are.same({2, 30, 1, 1, 4}, y:shape())
      local W = fc.weight:reshape({30, 2 * 24 * 34})
      local xr = x:permute({1, 5, 2, 3, 4}):contiguous():reshape({8, 2 * 24 * 34})
      local ref = xr:matmul(W:t()):reshape({2, 4, 30}):permute({1, 3, 2}):contiguous()
      local d = (y:reshape({2, 30, 4}) - ref):square():sum():item()
      assert.is_true(math.sqrt(d) < 1e-3)
      assert.are.same({5, 7, 1, 1, 1}, sl:dense(7, 5).weight:shape())
      assert.are.same({5, 1, 3, 4, 1}, sl:dense({4, 3}, 5).weight:shape())
   end)

   it('initialises uniform within weightScale/sqrt(fanIn)', function()
      snn.manualSeed(1)
      local fc = sl:dense(400, 100)
      local bound = 10 / math.sqrt(400)
      assert.is_true(fc.weight:max() <= bound and fc.weight:min() >= -bound)
      assert.is_true(fc.weight:max() > 0.9 * bound and fc.weight:min() < -0.9 * bound)
      assert.is_true(math.abs(fc.weight:mean():item()) < 0.02)
   end)

   it('computes the same on the sparse-spike path and the GEMM path, forward and weight gradient', function()
      snn.manualSeed(2)
      local fc = sl:dense({6, 5, 2}, 16)
      local x = T.bernoulli({3, 2, 5, 6, 40}, 0.03)
      local g = T.randn({3, 16, 1, 1, 40})
      local outs, grads = {}, {}
      for k, mode in ipairs({true, false}) do
         fc.sparse = mode
         fc.weight.grad = nil
         local y = fc(x)
         y:backward(g)
         outs[k], grads[k] = y, fc.weight.grad:clone()
      end
      H.assertClose(outs[1], outs[2], 1e-5, 1e-5, 'forward')
      H.assertClose(grads[1], grads[2], 1e-5, 1e-5, 'weight gradient')
      fc.sparse = 'auto'
   end)

   it('passes gradient checks to input and weight on both paths', function()
      local fc = sl:dense(4, 3, 1)
      local x = T.randn({2, 4, 1, 1, 5}):requiresGrad(true)
      assert(H.gradcheck(function(v, w) fc.weight = w return fc(v) end, {x, fc.weight}))
      fc.sparse = true
      local xs = (T.bernoulli({2, 4, 1, 1, 5}, 0.3) * 2):requiresGrad(true)
      assert(H.gradcheck(function(v, w) fc.weight = w return fc(v) end, {xs, fc.weight}))
   end)

   it('rejects wrong ranks and channel counts', function()
      local fc = sl:dense({34, 34, 2}, 8)
      local ok, err = pcall(fc.forward, fc, T.zeros({12, 2, 34, 34}))
      assert.is_false(ok)
      assert.truthy(err:find('dense: expected a 5%-D') and err:find('%[12, 2, 34, 34%]'))
      ok, err = pcall(fc.forward, fc, T.zeros({1, 3, 34, 34, 5}))
      assert.truthy(err:find('expected input %[N, 2, 34, 34, T%], got %[1, 3, 34, 34, 5%]'))
      assert.has_error(function() sl:dense({1, 2, 3, 4}, 5) end)
      assert.has_error(function() sl:dense(4, {5}) end)
   end)
end)

describe('conv', function()
   it('matches explicit sums with stride, padding, dilation and groups (test 007)', function()
      snn.manualSeed(3)
      local cases = {
         {4, 2, 3, 1, 0, 1, 1},
         {4, 6, 3, 2, 1, 1, 2},
         {2, 3, {3, 2}, {1, 2}, {1, 0}, {2, 1}, 1},
      }
      for k, cs in ipairs(cases) do
         local cv = sl:conv(cs[1], cs[2], cs[3], cs[4], cs[5], cs[6], cs[7], 1)
         local x = T.randn({2, cs[1], 7, 6, 3})
         local y = cv(x)
         local function p2(v) return type(v) == 'table' and v or {v, v} end
         local ref, shape = refConv(x:totable(), x:shape(), cv.weight:totable(), cv.weight:shape(), p2(cs[4]),
            p2(cs[5]), p2(cs[6]), cs[7])
         assert.are.same(shape, y:shape())
         H.assertClose(y, ref, 1e-4, 1e-5, 'case ' .. k)
      end
   end)

   it('passes gradient checks for input and weight', function()
      local cv = sl:conv(4, 2, 3, 2, 1, 1, 2, 1)
      local x = T.randn({2, 4, 5, 5, 2}):requiresGrad(true)
      assert(H.gradcheck(function(v, w) cv.weight = w return cv(v) end, {x, cv.weight}))
      local cv2 = sl:conv(2, 3, {2, 3}, 1, {0, 1}, {2, 1}, 1, 1)
      assert(H.gradcheck(function(v, w) cv2.weight = w return cv2(v) end,
         {T.randn({1, 2, 5, 4, 3}):requiresGrad(true), cv2.weight}))
   end)

   it('uses the hooked weight forward and backward (quantisation)', function()
      local cv = sl:conv(2, 2, 1, 1, 0, 1, 1, 10, function(w) return snn.quantize(w, 2) end)
      local x = T.randn({1, 2, 3, 3, 2}):requiresGrad(true)
      local y = cv(x)
      local plain = sl:conv(2, 2, 1, 1, 0, 1, 1, 1)
      plain.weight = snn.quantize(cv.weight, 2):detach()
      H.assertClose(y, plain(x), 1e-6, 1e-6)
      y:backward(T.ones(y:shape()))
      assert.is_true(cv.weight.grad:abs():sum():item() > 0)
   end)

   it('rejects kernels larger than the padded input and wrong channels', function()
      local cv = sl:conv(2, 4, 5)
      local ok, err = pcall(cv.forward, cv, T.zeros({1, 2, 3, 3, 4}))
      assert.is_false(ok)
      assert.truthy(err:find('conv: kernel 5x5') and err:find('padded input 3x3'))
      ok, err = pcall(cv.forward, cv, T.zeros({1, 3, 8, 8, 4}))
      assert.truthy(err:find('expected 2 input channels'))
      assert.has_error(function() sl:conv(3, 4, 3, 1, 0, 1, 2) end)
   end)
end)

describe('pool', function()
   it('sums windows times 1.1 theta, per channel (test 007)', function()
      local pl = sl:pool(2)
      assert.are.same({1, 1, 2, 2, 1}, pl.weight:shape())
      local x = T.randn({2, 3, 6, 4, 5})
      local y = pl(x)
      assert.are.same({2, 3, 3, 2, 5}, y:shape())
      local xv, s = x:totable(), x:shape()
      local ref = {}
      for n = 1, 2 do for c = 1, 3 do for oh = 1, 3 do for ow = 1, 2 do for t = 1, 5 do
         local sum = 0
         for i = 0, 1 do for j = 0, 1 do sum = sum + at(xv, s, n, c, 2 * oh - 1 + i, 2 * ow - 1 + j, t) end end
         ref[#ref + 1] = 11 * sum
      end end end end end
      H.assertClose(y, ref, 1e-5, 1e-5)
   end)

   it('pads H mod k zero rows for odd sizes, as the reference', function()
      local x = T.ones({1, 1, 5, 5, 1})
      local y = sl:pool(2)(x):totable()
      -- 3x3 output; the last row and column only sum the real row/column
      H.assertClose(y, {44, 44, 22, 44, 44, 22, 22, 22, 11}, 1e-6)
      local y2 = sl:pool(2)(T.ones({1, 2, 5, 5, 1}))
      assert.are.same({1, 2, 3, 3, 1}, y2:shape())
      assert.is_true(sl:pool(2)(T.ones({1, 1, 101, 101, 1})):numel() == 51 * 51)
   end)

   it('refuses geometries where the folded windows would mix channels', function()
      local ok, err = pcall(function() return sl:pool(3)(T.zeros({1, 2, 4, 4, 3})) end)
      assert.is_false(ok)
      assert.truthy(err:find('pool'))
      ok, err = pcall(function() return sl:pool(7)(T.zeros({1, 2, 11, 11, 3})) end)
      assert.is_false(ok)
      assert.truthy(err:find('mix or shift channels'))
   end)

   it('passes a gradient check to the input and accepts a preHookFx', function()
      local pl = sl:pool({2, 3})
      assert(H.gradcheck(function(v) return pl(v) end, {T.randn({1, 2, 4, 6, 2}):requiresGrad(true)}, {atol = 5e-2}))
      local hooked = sl:pool(2, nil, 0, 1, function(w) return snn.quantize(w, 2) end)
      H.assertClose(hooked(T.ones({1, 1, 2, 2, 1})), {4 * 12}, 1e-6) -- round(5.5) = 6 (half to even), * 2
   end)
end)

describe('convTranspose and unpool', function()
   it('convTranspose scatters each input through the kernel (test 013)', function()
      snn.manualSeed(4)
      local ct = sl:convTranspose(3, 4, 3, 2, 1, 1, 1, 1)
      assert.are.same({3, 4, 3, 3, 1}, ct.weight:shape())
      local x = T.randn({2, 3, 4, 5, 2})
      local y = ct(x)
      assert.are.same({2, 4, 7, 9, 2}, y:shape())
      local ref, xv, wv = {}, x:totable(), ct.weight:totable()
      for i = 1, y:numel() do ref[i] = 0 end
      local ys = y:shape()
      for n = 1, 2 do for c = 1, 3 do for h = 1, 4 do for w = 1, 5 do for t = 1, 2 do
         local v = at(xv, x:shape(), n, c, h, w, t)
         for o = 1, 4 do for i = 1, 3 do for j = 1, 3 do
            local oh, ow = (h - 1) * 2 - 1 + (i - 1) + 1, (w - 1) * 2 - 1 + (j - 1) + 1
            if oh >= 1 and oh <= ys[3] and ow >= 1 and ow <= ys[4] then
               local idx = ((((n - 1) * 4 + o - 1) * ys[3] + oh - 1) * ys[4] + ow - 1) * 2 + t
               ref[idx] = ref[idx] + v * wv[(((c - 1) * 4 + o - 1) * 3 + i - 1) * 3 + j]
            end
         end end end
      end end end end end
      H.assertClose(y, ref, 1e-4, 1e-5)
      -- fan-in from weight dimension 1 (out/groups * k * k), as PyTorch
      local big = sl:convTranspose(2, 50, 2, 1, 0, 1, 1, 1)
      assert.is_true(big.weight:abs():max() <= 1 / math.sqrt(50 * 4))
   end)

   it('passes gradient checks for convTranspose', function()
      local ct = sl:convTranspose(2, 4, 3, 2, 1, 1, 2, 1)
      assert(H.gradcheck(function(v, w) ct.weight = w return ct(v) end,
         {T.randn({1, 2, 3, 3, 2}):requiresGrad(true), ct.weight}))
   end)

   it('unpool copies each value times 1.1 theta into a k x k block (test 013)', function()
      local up = sl:unpool(2)
      local x = T.randn({2, 3, 3, 4, 2})
      local y = up(x)
      assert.are.same({2, 3, 6, 8, 2}, y:shape())
      local xv, yv = x:totable(), y:totable()
      for n = 1, 2 do for c = 1, 3 do for h = 1, 6 do for w = 1, 8 do for t = 1, 2 do
         local want = 11 * at(xv, x:shape(), n, c, math.ceil(h / 2), math.ceil(w / 2), t)
         assert.is_true(math.abs(at(yv, y:shape(), n, c, h, w, t) - want) < 1e-5)
      end end end end end
      assert(H.gradcheck(function(v) return up(v) end, {T.randn({1, 2, 2, 2, 2}):requiresGrad(true)}, {atol = 5e-2}))
   end)
end)

describe('dropout', function()
   it('drops whole neurons for all time bins and rescales survivors (test 008)', function()
      snn.manualSeed(8)
      local dr = sl:dropout(0.1)
      local x = T.rand({4, 50, 1, 1, 20}) + 0.5
      local y = dr(x)
      local xs, ys = x:sum(5):totable(), y:sum(5):totable()
      local dropped = 0
      for i = 1, #xs do
         if ys[i] == 0 then dropped = dropped + 1
         else assert.is_true(math.abs(0.9 * ys[i] - xs[i]) < 1e-3 * xs[i]) end
      end
      assert.is_true(dropped > 5 and dropped < 40)
      dr:evaluate()
      assert.are.equal(0, T.maxAbsDiff(dr(x), x))
   end)

   it('uses the same mask for the gradient', function()
      local dr = sl:dropout(0.5)
      local x = T.ones({2, 10, 1, 1, 3}):requiresGrad(true)
      local y = dr(x)
      y:backward(T.ones(y:shape()))
      H.assertClose(x.grad, y, 1e-6)
      assert.has_error(function() sl:dropout(1.5) end)
   end)
end)

describe('replicateInTime', function()
   it('copies a frame into every time bin (test 011)', function()
      local x = T.randn({2, 3, 4, 5})
      local y = sl:replicateInTime(x)
      assert.are.same({2, 3, 4, 5, 300}, y:shape())
      assert.are.equal(0, T.maxAbsDiff(y:select(5, 1), x))
      assert.are.equal(0, T.maxAbsDiff(y:select(5, 300), x))
      local ok, err = pcall(sl.replicateInTime, sl, x, 'linear')
      assert.is_false(ok)
      assert.truthy(err:find("only mode 'nearest'"))
   end)
end)
