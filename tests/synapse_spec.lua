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

local function p2(v) return type(v) == 'table' and v or {v, v} end

-- sum over all elements of a * b (tensors of the same shape)
local function dot(a, b) return (a * b):sum():item() end

-- pcall(f) must fail with a message containing every plain string given
local function assertFails(f, ...)
   local ok, err = pcall(f)
   assert.is_false(ok, 'expected an error')
   for _, want in ipairs({...}) do
      assert(tostring(err):find(want, 1, true), 'error "' .. tostring(err) .. '" does not mention "' .. want .. '"')
   end
end

-- run f with n threads, restoring the previous count
local function withThreads(n, f)
   local prev = snn.getNumThreads()
   snn.setNumThreads(n)
   local ok, a, b, c = pcall(f)
   snn.setNumThreads(prev)
   assert(ok, a)
   return a, b, c
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

   it('refuses a weightScale that is not finite', function()
      for _, ws in ipairs({0 / 0, 1 / 0}) do
         assertFails(function() sl:dense(4, 3, ws) end, 'dense', 'expected weightScale as a finite number')
         assertFails(function() sl:conv(2, 3, 3, 1, 0, 1, 1, ws) end, 'conv', 'expected weightScale as a finite number')
      end
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

   it('sparse path: any output count, a batch of one, signed values and -0', function()
      snn.manualSeed(21)
      for _, cs in ipairs({{1, 45}, {3, 32}, {2, 7}}) do
         local N, O = cs[1], cs[2]
         local fc = sl:dense({3, 2, 4}, O, 1)
         -- zeros of the mask times negative normals are -0
         local x = T.bernoulli({N, 4, 2, 3, 30}, 0.1) * T.randn({N, 4, 2, 3, 30})
         local g = T.randn({N, O, 1, 1, 30})
         local res = {}
         for k, mode in ipairs({true, false}) do
            fc.sparse = mode
            fc.weight.grad = nil
            local xin = x:detach():requiresGrad(true)
            local y = fc(xin)
            y:backward(g)
            res[k] = {y, fc.weight.grad:clone(), xin.grad}
         end
         for j, what in ipairs({'forward', 'weight gradient', 'input gradient'}) do
            H.assertClose(res[1][j], res[2][j], 1e-5, 1e-5, what .. ' N=' .. N .. ' O=' .. O)
         end
      end
   end)

   it('decides the path by density and output count, with the same results', function()
      snn.manualSeed(22)
      local fc = sl:dense(300, 40, 1)
      for _, density in ipairs({0.02, 0.5}) do
         local x = T.bernoulli({2, 300, 1, 1, 25}, density)
         fc.sparse = 'auto'
         local auto = fc(x)
         fc.sparse = false
         H.assertClose(auto, fc(x), 1e-5, 1e-5, 'density ' .. density)
         fc.sparse = true -- without a graph to keep, the non-zero list is freed at once
         H.assertClose(snn.noGrad(function() return fc(x) end), auto, 1e-5, 1e-5, 'noGrad ' .. density)
      end
      fc.sparse = 'auto'
   end)

   it('uses the hooked weight on both paths; the weight gradient flows through the hook', function()
      snn.manualSeed(23)
      local fc = sl:dense(5, 33, 1, function(w) return w * w end)
      local x = (T.bernoulli({2, 5, 1, 1, 6}, 0.3) * 3):requiresGrad(true)
      for _, mode in ipairs({true, false}) do
         fc.sparse = mode
         assert(H.gradcheck(function(v, w) fc.weight = w return fc(v) end, {x, fc.weight}))
         -- y = (W .* W) x, so dL/dW = 2 W .* (g x^T)
         fc.weight.grad = nil
         local y = fc(x)
         local g = T.randn(y:shape())
         y:backward(g)
         local gx = g:reshape({2, 33, 6}):permute({2, 1, 3}):contiguous():reshape({33, 12})
         local xx = x:detach():reshape({2, 5, 6}):permute({2, 1, 3}):contiguous():reshape({5, 12})
         local want = fc.weight:detach():reshape({33, 5}) * 2 * gx:matmul(xx:t())
         H.assertClose(fc.weight.grad:reshape({33, 5}), want, 1e-4, 1e-4, mode and 'sparse' or 'GEMM')
      end
   end)

   it('is a valid convolution when the input is larger than declared, as the reference', function()
      local fc = sl:dense({2, 2, 1}, 3, 1)
      local x = T.randn({1, 1, 3, 2, 4})
      local y = fc(x)
      local ref, shape = refConv(x:totable(), x:shape(), fc.weight:totable(), fc.weight:shape(), {1, 1}, {0, 0},
         {1, 1}, 1)
      assert.are.same({1, 3, 2, 1, 4}, shape)
      assert.are.same(shape, y:shape())
      H.assertClose(y, ref, 1e-5, 1e-6)
   end)

   it('rejects wrong ranks and channel counts', function()
      local fc = sl:dense({34, 34, 2}, 8)
      local ok, err = pcall(fc.forward, fc, T.zeros({12, 2, 34, 34}))
      assert.is_false(ok)
      assert.truthy(err:find('dense: expected a 5%-D') and err:find('%[12, 2, 34, 34%]'))
      ok, err = pcall(fc.forward, fc, T.zeros({1, 3, 34, 34, 5}))
      assert.truthy(err:find('expected input %[N, 2, 34, 34, T%], got %[1, 3, 34, 34, 5%]'))
      assertFails(function() return fc(T.zeros({1, 2, 33, 34, 5})) end, 'dense', '[N, 2, 34, 34, T]', '[1, 2, 33, 34, 5]')
      assertFails(function() return fc('x') end, 'dense', 'string')
      assertFails(function() sl:dense({1, 2, 3, 4}, 5) end, 'dense', 'inFeatures')
      assertFails(function() sl:dense(4, {5}) end, 'dense', 'outFeatures')
      assertFails(function() sl:dense(0, 5) end, 'dense', 'inFeatures')
      assertFails(function() sl:dense(4, 5, 10, 'not a function') end, 'dense', 'preHookFx')
      assertFails(function() sl:dense(4, 5, 'ten') end, 'dense', 'weightScale')
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

   it('conv(8 -> 1, k5) equals explicit sums within the reference tolerance (test 007)', function()
      snn.manualSeed(31)
      local cv = sl:conv(8, 1, 5, 1, 0, 1, 1, 1)
      assert.are.same({1, 8, 5, 5, 1}, cv.weight:shape())
      local x = T.randn({2, 8, 9, 10, 5})
      local y = cv(x)
      local ref, shape = refConv(x:totable(), x:shape(), cv.weight:totable(), cv.weight:shape(), {1, 1}, {0, 0},
         {1, 1}, 1)
      assert.are.same(shape, y:shape())
      local err = (y - T.fromtable(ref, shape)):square():sum():item()
      assert.is_true(math.sqrt(err) / y:numel() < 1e-6)
   end)

   it('splits the batch for speed, with the weight gradient summed independently of the thread count', function()
      -- large enough (4 samples, > 4e6 multiply-adds) for the per-sample paths
      snn.manualSeed(32)
      local cv = sl:conv(4, 8, 3, 1, 1, 1, 1, 1)
      local x = T.randn({4, 4, 8, 8, 60}):requiresGrad(true)
      local g = T.randn({4, 8, 8, 8, 60})
      local function run()
         cv.weight.grad, x.grad = nil, nil
         local y = cv(x)
         y:backward(g)
         return y, cv.weight.grad:clone(), x.grad:clone()
      end
      local y1, gw1, gx1 = withThreads(1, run)
      local y2, gw2, gx2 = withThreads(2, run)
      assert.are.equal(0, T.maxAbsDiff(y1, y2))
      assert.are.equal(0, T.maxAbsDiff(gw1, gw2))
      assert.are.equal(0, T.maxAbsDiff(gx1, gx2))
      -- dW[o, c, i, j] = sum_{n, oh, ow, t} g[n, o, oh, ow, t] x[n, c, oh + i - 1, ow + j - 1, t]
      local xv, gv, xs, gs = x:detach():totable(), g:totable(), x:shape(), g:shape()
      local want = {}
      for o = 1, 8 do for c = 1, 4 do for i = 1, 3 do for j = 1, 3 do
         local sum = 0
         for n = 1, 4 do for oh = 1, 8 do for ow = 1, 8 do
            local ih, iw = oh + i - 2, ow + j - 2
            if ih >= 1 and ih <= 8 and iw >= 1 and iw <= 8 then
               local gb = ((((n - 1) * 8 + o - 1) * 8 + oh - 1) * 8 + ow - 1) * 60
               local xb = ((((n - 1) * 4 + c - 1) * 8 + ih - 1) * 8 + iw - 1) * 60
               for t = 1, 60 do sum = sum + gv[gb + t] * xv[xb + t] end
            end
         end end end
         want[#want + 1] = sum
      end end end end
      H.assertClose(gw1, want, 1e-4, 1e-3, 'weight gradient')
      local ref = refConv(xv, xs, cv.weight:totable(), cv.weight:shape(), {1, 1}, {1, 1}, {1, 1}, 1)
      H.assertClose(y1, ref, 1e-4, 1e-4, 'forward')
      assert.are.same(gs, y1:shape())
   end)

   it('initialises uniform within weightScale/sqrt(inChannels/groups * kH * kW)', function()
      snn.manualSeed(33)
      local cv = sl:conv(8, 64, {3, 2}, 1, 0, 1, 4)
      assert.are.same({64, 2, 3, 2, 1}, cv.weight:shape())
      local bound = 100 / math.sqrt(2 * 3 * 2)
      assert.is_true(cv.weight:max() <= bound and cv.weight:min() >= -bound)
      assert.is_true(cv.weight:max() > 0.9 * bound and cv.weight:min() < -0.9 * bound)
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
      assertFails(function() return cv(T.zeros({2, 8, 8, 4})) end, 'conv', '5-D', '[2, 8, 8, 4]')
      assertFails(function() return sl:conv(2, 4, 3, 1, 0, 3)(T.zeros({1, 2, 6, 6, 2})) end, 'conv', 'dilation 3x3',
         'padded input 6x6')
      assertFails(function() sl:conv(3, 4, 3, 1, 0, 1, 2) end, 'conv', 'groups 2')
      assertFails(function() sl:conv(3, 4, {3, 3, 3}) end, 'conv', 'kernelSize')
      assertFails(function() sl:conv(3, 4, 3, 0) end, 'conv', 'stride')
      assertFails(function() sl:conv(3, 4, 3, 1, -1) end, 'conv', 'padding')
   end)
end)

describe('dense and conv on empty batches', function()
   it('give empty outputs and zero weight gradients for N = 0 or T = 0, on both paths', function()
      for _, sparse in ipairs({'auto', false}) do
         for _, m in ipairs({sl:dense({5, 4, 3}, 40), sl:conv(3, 4, 3, 1, 1)}) do
            m.sparse = sparse
            for _, shape in ipairs({{0, 3, 4, 5, 7}, {2, 3, 4, 5, 0}}) do
               local x = T.zeros(shape):requiresGrad(true)
               local y = m(x)
               assert.are.equal(0, y:numel())
               assert.are.equal(shape[1], y:size(1))
               assert.are.equal(shape[5], y:size(5))
               m:zeroGrad()
               y:sum():backward()
               assert.are.same(m.weight:shape(), m.weight.grad:shape())
               assert.are.equal(0, m.weight.grad:abs():sum():item())
               assert.are.same(shape, x.grad:shape())
            end
         end
      end
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

   it('one channel: odd-size rows/columns, then padding, overlapping windows (explicit sums)', function()
      -- H = 5, k = 3: 5 mod 3 = 2 zero rows appended (7), W = 4: 1 column (5);
      -- then padding 1 on every side, stride 1
      local pl = sl:pool(3, 1, 1)
      local x = T.randn({2, 1, 5, 4, 3})
      local y = pl(x)
      assert.are.same({2, 1, 7, 5, 3}, y:shape())
      local xv, s = x:totable(), x:shape()
      local function xp(n, h, w, t) -- padded input, 1-based over the 9 x 7 frame
         local ih, iw = h - 1, w - 1
         if ih < 1 or ih > 5 or iw < 1 or iw > 4 then return 0 end
         return at(xv, s, n, 1, ih, iw, t)
      end
      local ref = {}
      for n = 1, 2 do for oh = 1, 7 do for ow = 1, 5 do for t = 1, 3 do
         local sum = 0
         for i = 0, 2 do for j = 0, 2 do sum = sum + xp(n, oh + i, ow + j, t) end end
         ref[#ref + 1] = 11 * sum
      end end end end
      H.assertClose(y, ref, 1e-5, 1e-5)
      assert(H.gradcheck(function(v) return pl(v) end, {T.randn({1, 1, 5, 4, 2}):requiresGrad(true)}, {atol = 5e-2}))
   end)

   it('refuses geometries where the folded windows would mix channels', function()
      local ok, err = pcall(function() return sl:pool(3)(T.zeros({1, 2, 4, 4, 3})) end)
      assert.is_false(ok)
      assert.truthy(err:find('pool'))
      ok, err = pcall(function() return sl:pool(7)(T.zeros({1, 2, 11, 11, 3})) end)
      assert.is_false(ok)
      assert.truthy(err:find('mix or shift channels'))
      assertFails(function() return sl:pool(2, 2, 1)(T.zeros({1, 2, 4, 4, 3})) end, 'pool', 'kernel 2',
         '[1, 2, 4, 4, 3]')
      assertFails(function() return sl:pool(2)(T.zeros({1, 2, 4, 4})) end, 'pool', '5-D', '[1, 2, 4, 4]')
      -- W = 4 < k = 9: 4 mod 9 = 4 zero columns give 8, still narrower than 9
      assertFails(function() return sl:pool({1, 9})(T.zeros({1, 1, 4, 4, 2})) end, 'pool', 'kernel width 9',
         '[1, 1, 4, 4, 2]')
      assertFails(function() sl:pool(0) end, 'pool', 'kernelSize')
   end)

   it('passes a gradient check to the input and accepts a preHookFx', function()
      local pl = sl:pool({2, 3})
      assert(H.gradcheck(function(v) return pl(v) end, {T.randn({1, 2, 4, 6, 2}):requiresGrad(true)}, {atol = 5e-2}))
      local hooked = sl:pool(2, nil, 0, 1, function(w) return snn.quantize(w, 2) end)
      H.assertClose(hooked(T.ones({1, 1, 2, 2, 1})), {4 * 12}, 1e-6) -- round(5.5) = 6 (half to even), * 2
   end)
end)

describe('conv sizes past the BLAS limit', function()
   it('raises an error naming the output when positions x time bins exceed 2^31 - 1', function()
      local c = sl:conv(1, 2, 3, 1, 1)
      c.sparse = false
      -- an empty batch: nothing is allocated, the sizes are still checked
      local ok, err = pcall(c, T.zeros({0, 1, 50000, 50000, 4}))
      assert.is_false(ok)
      assert.truthy(tostring(err):find('conv: output %[0, 2, 50000, 50000, 4%] has 10000000000 positions'), err)
      assert.are.same({0, 2, 5, 5, 4}, c(T.zeros({0, 1, 5, 5, 4})):shape())
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

   it('convTranspose defaults to weightScale 100: the weights of an explicit 100 under the same seed', function()
      local function weightsOf(weightScale)
         snn.manualSeed(13)
         return H.values(sl:convTranspose(3, 4, 3, nil, nil, nil, nil, weightScale).weight)
      end
      local default = weightsOf(nil)
      assert.are.same(weightsOf(100), default)
      assert.are_not.same(weightsOf(10), default)
   end)

   it('passes gradient checks for convTranspose', function()
      local ct = sl:convTranspose(2, 4, 3, 2, 1, 1, 2, 1)
      assert(H.gradcheck(function(v, w) ct.weight = w return ct(v) end,
         {T.randn({1, 2, 3, 3, 2}):requiresGrad(true), ct.weight}))
      local ct2 = sl:convTranspose(3, 2, {2, 3}, {1, 2}, {0, 1}, {2, 1}, 1, 1)
      assert(H.gradcheck(function(v, w) ct2.weight = w return ct2(v) end,
         {T.randn({2, 3, 3, 2, 2}):requiresGrad(true), ct2.weight}))
   end)

   it('is the adjoint of conv with the same weight: <conv(x), y> = <x, convTranspose(y)>', function()
      snn.manualSeed(41)
      for _, cs in ipairs({{4, 6, 3, 2, 1, 1, 2}, {2, 3, {3, 2}, {2, 1}, {1, 0}, {1, 2}, 1}}) do
         local cv = sl:conv(cs[1], cs[2], cs[3], cs[4], cs[5], cs[6], cs[7], 1)
         local ct = sl:convTranspose(cs[2], cs[1], cs[3], cs[4], cs[5], cs[6], cs[7], 1)
         -- convTranspose weight [in = conv's out, out/groups, kH, kW, 1] = conv's weight
         ct.weight = cv.weight:detach()
         -- 9 x 9: every stride divides (9 + 2p - d(k - 1) - 1), so the
         -- transposed convolution (output padding 0) gives back 9 x 9
         local x = T.randn({2, cs[1], 9, 9, 3})
         local cx = cv(x)
         local y = T.randn(cx:shape())
         local ty = ct(y)
         assert.are.same(x:shape(), ty:shape())
         local lhs, rhs = dot(cx, y), dot(x, ty)
         assert.is_true(math.abs(lhs - rhs) < 1e-4 * (math.abs(lhs) + 1), string.format('%g vs %g', lhs, rhs))
      end
   end)

   it('rejects wrong ranks, channel counts and padding that leaves no output', function()
      local ct = sl:convTranspose(3, 4, 3)
      assertFails(function() return ct(T.zeros({1, 3, 4, 4})) end, 'convTranspose', '5-D', '[1, 3, 4, 4]')
      assertFails(function() return ct(T.zeros({1, 2, 4, 4, 2})) end, 'convTranspose', 'expected 3 input channels',
         '[1, 2, 4, 4, 2]')
      assertFails(function() return sl:convTranspose(3, 4, 1, 1, 2)(T.zeros({1, 3, 2, 2, 2})) end, 'convTranspose',
         'padding 2x2')
      assertFails(function() sl:convTranspose(3, 4, 3, 1, 0, 1, 2) end, 'convTranspose', 'groups')
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

   it('unpool accepts a preHookFx and rejects wrong ranks and channel-mixing geometries', function()
      local up = sl:unpool(2, nil, 0, 1, function(w) return w * 0 + 3 end)
      H.assertClose(up(T.ones({1, 1, 1, 1, 2})), {3, 3, 3, 3, 3, 3, 3, 3}, 1e-6)
      assertFails(function() return sl:unpool(2)(T.zeros({1, 2, 3, 3})) end, 'unpool', '5-D', '[1, 2, 3, 3]')
      -- k = 4, stride 2: the blocks of neighbouring channels would overlap
      assertFails(function() return sl:unpool(4, 2)(T.zeros({1, 2, 2, 2, 1})) end, 'unpool')
      -- one channel is always its own
      assert.are.same({1, 1, 6, 6, 1}, sl:unpool(4, 2)(T.zeros({1, 1, 2, 2, 1})):shape())
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
      assertFails(function() sl:dropout(0 / 0) end, 'dropout', 'expected p in [0, 1], got nan')
   end)

   it('defaults to p = 0.5: survivors scaled by 1 / (1 - 0.5) = 2, the mask of an explicit 0.5', function()
      local x = T.ones({2, 40, 1, 1, 3})
      local function outOf(p)
         snn.manualSeed(82)
         return H.values(sl:dropout(p)(x))
      end
      local default = outOf(nil)
      for _, v in ipairs(default) do assert.is_true(v == 0 or v == 2, 'value ' .. v) end
      assert.are.same(outOf(0.5), default)
   end)

   it('keeps or drops each neuron for all time bins, afresh at every call; p = 0 and p = 1', function()
      snn.manualSeed(81)
      local dr = sl:dropout(0.5)
      local x = T.ones({3, 20, 2, 1, 7})
      local y1, y2 = dr(x), dr(x)
      -- every neuron row is all 0 or all 2
      local m, mx = y1:min(5), y1:max(5)
      assert.are.equal(0, T.maxAbsDiff(m, mx))
      local v = y1:totable()
      for i = 1, #v do assert.is_true(v[i] == 0 or v[i] == 2) end
      assert.is_true(T.maxAbsDiff(y1, y2) > 0)
      assert.are.equal(0, T.maxAbsDiff(sl:dropout(0)(x), x))
      assert.are.equal(0, sl:dropout(1)(x):abs():sum():item())
      assertFails(function() return dr(T.ones({3, 20, 2, 1})) end, 'dropout', '5-D')
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
      assertFails(function() return sl:replicateInTime(T.zeros({2, 3, 4, 5, 6})) end, 'replicateInTime', '4-D',
         '[2, 3, 4, 5, 6]')
      assertFails(function() return require('slayer.synapse').replicateInTime(x, 0) end, 'replicateInTime', 'time bins')
   end)
end)

describe('sparse dense path', function()
   it('gives the same numbers with one and two threads', function()
      snn.manualSeed(91)
      local fc = sl:dense({6, 6, 2}, 70, 1)
      fc.sparse = true
      local x = T.bernoulli({4, 2, 6, 6, 50}, 0.05)
      local g = T.randn({4, 70, 1, 1, 50})
      local function run()
         fc.weight.grad = nil
         local y = fc(x)
         y:backward(g)
         return y, fc.weight.grad:clone()
      end
      local y1, g1 = withThreads(1, run)
      local y2, g2 = withThreads(2, run)
      assert.are.equal(0, T.maxAbsDiff(y1, y2))
      assert.are.equal(0, T.maxAbsDiff(g1, g2))
   end)
end)

describe('module descriptions', function()
   it('name the op and its geometry', function()
      assert.truthy(tostring(sl:dense({34, 34, 2}, 512)):find('dense(34x34x2 -> 512)', 1, true))
      assert.truthy(tostring(sl:conv(2, 16, 5, 1, 1)):find('conv(2 -> 16, 5x5', 1, true))
      assert.truthy(tostring(sl:pool(2)):find('pool(2x2, stride 2x2, weight 11)', 1, true))
      assert.truthy(tostring(sl:convTranspose(16, 2, 5)):find('convTranspose(16 -> 2, 5x5', 1, true))
      assert.truthy(tostring(sl:unpool(2)):find('unpool(2x2', 1, true))
      assert.truthy(tostring(sl:dropout(0.1)):find('dropout(p = 0.1)', 1, true))
   end)
end)

describe('error positions', function()
   it('point at the caller\'s line, past the package\'s own frames (constructors, wrappers, methods)', function()
      local cases = {
         {'dense: expected inFeatures', function() local m = sl:dense('x', 3); return m end},
         {'view: shape [4] holds 4 elements', function() local t = T.zeros({2, 3}):view({4}); return t end},
         {'Adam: expected an options table', function() local o = snn.optim.Adam({T.zeros({1})}, 5); return o end},
         {'psp: expected a 5-D', function() local y = sl:psp(T.zeros({2, 3})); return y end},
      }
      for _, c in ipairs(cases) do
         local line = debug.getinfo(c[2], 'S').linedefined
         local ok, err = pcall(c[2])
         assert.is_false(ok)
         assert.truthy(tostring(err):find('synapse_spec.lua:' .. line .. ': ' .. c[1], 1, true), err)
      end
   end)
end)
