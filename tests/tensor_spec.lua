local snn = require 'slayer'
local H = require 'support.helpers'
local T = snn.tensor

describe('tensor construction', function()
   it('builds zeros, ones, full, empty with the given shape', function()
      local z = T.zeros({2, 3, 4})
      assert.are.same({2, 3, 4}, z:shape())
      assert.are.equal(24, z:numel())
      assert.are.equal(3, z:dim())
      for _, v in ipairs(z:totable()) do assert.are.equal(0, v) end
      for _, v in ipairs(T.ones({5}):totable()) do assert.are.equal(1, v) end
      for _, v in ipairs(T.full({2, 2}, 2.5):totable()) do assert.are.equal(2.5, v) end
      assert.are.same({12, 2, 34, 34, 3}, T.empty({12, 2, 34, 34, 3}):shape())
      assert.are.same({2, 3}, T.zeros(2, 3):shape())
   end)

   it('reads flat and nested tables in row-major order', function()
      local a = T.fromtable({{1, 2, 3}, {4, 5, 6}})
      assert.are.same({2, 3}, a:shape())
      assert.are.same({1, 2, 3, 4, 5, 6}, a:totable())
      local b = T.fromtable({1, 2, 3, 4, 5, 6}, {3, 2})
      assert.are.same({3, 2}, b:shape())
      assert.are.equal(4, b:narrow(1, 2, 1):narrow(2, 2, 1):item())
   end)

   it('rejects bad shapes and ragged tables with a message naming the function', function()
      assert.has_error(function() T.zeros({2, -1}) end)
      local ok, err = pcall(T.zeros, {2, 1.5})
      assert.is_false(ok)
      assert.truthy(err:find('zeros'))
      ok, err = pcall(T.fromtable, {{1, 2}, {3}})
      assert.is_false(ok)
      assert.truthy(err:find('fromtable') and err:find('rectangular'))
      ok, err = pcall(T.fromtable, {1, 2, 3}, {2, 2})
      assert.truthy(err:find('holds 4 values'))
      -- holes (and other keys) are refused, whatever border #t picks
      local holey = {1}
      holey[3] = 3
      ok, err = pcall(T.fromtable, holey)
      assert.truthy(not ok and err:find('fromtable: expected a list of numbers without holes', 1, true), err)
      ok, err = pcall(T.fromtable, {{1, 2}, {3, 4, x = 5}})
      assert.truthy(not ok and err:find('without holes at depth 2', 1, true), err)
      ok, err = pcall(T.zeros, {1, 1, 1, 1, 1, 1, 1, 1, 1})
      assert.truthy(err:find('at most 8'))
   end)

   it('gives the same random numbers for the same seed, whatever the thread count', function()
      local threads = snn.getNumThreads()
      snn.manualSeed(7)
      snn.setNumThreads(1)
      local a = T.rand({100003})
      local n1 = T.randn({1000})
      snn.manualSeed(7)
      snn.setNumThreads(2)
      local b = T.rand({100003})
      local n2 = T.randn({1000})
      snn.setNumThreads(threads)
      assert.are.equal(0, T.maxAbsDiff(a, b))
      assert.are.equal(0, T.maxAbsDiff(n1, n2))
      snn.manualSeed(8)
      local c = T.rand({100003})
      assert.is_true(T.maxAbsDiff(a, c) > 0)
   end)

   it('draws uniform, normal and Bernoulli numbers with the right moments', function()
      snn.manualSeed(1)
      local u = T.rand({200000})
      local mu = u:mean():item()
      assert.is_true(math.abs(mu - 0.5) < 0.01)
      assert.is_true(u:min() >= 0 and u:max() < 1)
      local n = T.randn({200000})
      assert.is_true(math.abs(n:mean():item()) < 0.01)
      assert.is_true(math.abs((n * n):mean():item() - 1) < 0.02)
      local b = T.bernoulli({200000}, 0.015)
      local frac = b:sum():item() / 200000
      assert.is_true(math.abs(frac - 0.015) < 0.002)
      assert.are.equal(b:countNonzero(), b:sum():item())
   end)
end)

describe('tensor inspection', function()
   it('reports size, dims, data pointer and items', function()
      local t = T.arange(0, 5):reshape({2, 3})
      assert.are.equal(2, t:size(1))
      assert.are.equal(3, t:size(2))
      assert.are.equal(3, t:size(-1))
      local d = t:data()
      assert.are.equal(4, d[4])
      assert.are.equal(5, t:select(1, 2):select(1, 3):item())
      assert.has_error(function() t:size(3) end)
      assert.has_error(function() t:item() end)
   end)

   it('prints values and the shape like Torch7', function()
      local s = tostring(T.fromtable({{1, 2}, {3, 4}}))
      assert.truthy(s:find('size 2x2'))
      assert.truthy(s:find('3'))
      local big = tostring(T.zeros({100, 100}))
      assert.truthy(big:find('%.%.%.'))
      assert.truthy(big:find('100x100'))
      assert.truthy(#big < 2000)
      assert.truthy(tostring(T.zeros({2, 2, 2})):find('%(1,%.,%.%)') or tostring(T.zeros({2, 2, 2})):find('%(1,'))
      assert.are.equal('[slayer.FloatTensor of size 0x3, empty]', tostring(T.zeros({0, 3})))
   end)
end)

describe('views and copies', function()
   it('narrows, selects and transposes as views sharing storage', function()
      local t = T.zeros({3, 4})
      t:narrow(2, 2, 2):fill(1)
      assert.are.same({0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0}, t:totable())
      t:select(1, 3):fill(5)
      assert.are.same({5, 5, 5, 5}, t:select(1, 3):totable())
      local tt = T.arange(1, 6):reshape({2, 3}):transpose(1, 2)
      assert.are.same({3, 2}, tt:shape())
      assert.is_false(tt:isContiguous())
      assert.are.same({1, 4, 2, 5, 3, 6}, tt:contiguous():totable())
      assert.has_error(function() tt:view({6}) end)
      assert.are.same({1, 4, 2, 5, 3, 6}, tt:reshape({6}):totable())
   end)

   it('copies between shapes of equal size and into strided views', function()
      local dst = T.zeros({2, 4})
      dst:narrow(2, 3, 2):copy(T.fromtable({7, 8, 9, 10}, {2, 2}))
      assert.are.same({0, 0, 7, 8, 0, 0, 9, 10}, dst:totable())
      local ok, err = pcall(function() dst:copy(T.zeros({3})) end)
      assert.is_false(ok)
      assert.truthy(err:find('copy'))
      local c = dst:clone()
      c:fill(0)
      assert.are.equal(7, dst:data()[2])
   end)

   it('writes in place into empty tensors (a zero size makes the strides 0, yet nothing is shared)', function()
      local e = T.zeros({2, 3, 0})
      assert.are.same({0, 0, 1}, e:stride())
      assert.are.equal(e, e:zero())
      assert.are.equal(e, e:fill(1))
      assert.are.equal(e, e:copy(T.zeros({0})))
      assert.are.equal(e, e:add_(1))
      -- an expanded view of elements is still refused
      local ok, err = pcall(function() T.zeros({1, 3}):expand({2, 3}):zero() end)
      assert.is_false(ok)
      assert.truthy(err:find('zero: cannot write in place into the expanded view', 1, true))
   end)

   it('concatenates and stacks', function()
      local a, b = T.ones({2, 2}), T.zeros({2, 1})
      local c = T.cat({a, b}, 2)
      assert.are.same({2, 3}, c:shape())
      assert.are.same({1, 1, 0, 1, 1, 0}, c:totable())
      local s = T.stack({T.ones({3}), T.zeros({3})}, 1)
      assert.are.same({2, 3}, s:shape())
      assert.are.same({1, 1, 1, 0, 0, 0}, s:totable())
      assert.has_error(function() T.cat({a, T.zeros({3, 3})}, 2) end)
   end)

   it('reshapes with an inferred dimension and rejects impossible shapes', function()
      local t = T.zeros({4, 6})
      assert.are.same({2, 12}, t:reshape({2, -1}):shape())
      local ok, err = pcall(function() t:reshape({5, -1}) end)
      assert.is_false(ok)
      assert.truthy(err:find('reshape'))
      assert.are.same({4, 1, 6}, t:unsqueeze(2):shape())
      assert.are.same({4, 6}, t:unsqueeze(2):squeeze(2):shape())
   end)
end)

describe('element-wise maths', function()
   it('broadcasts binary operators with tensors and numbers', function()
      local a = T.fromtable({{1, 2, 3}, {4, 5, 6}})
      local r = T.fromtable({10, 20, 30})
      local c = T.fromtable({{1}, {2}})
      assert.are.same({11, 22, 33, 14, 25, 36}, (a + r):totable())
      assert.are.same({0, 1, 2, 2, 3, 4}, (a - c):totable())
      assert.are.same({2, 4, 6, 8, 10, 12}, (a * 2):totable())
      assert.are.same({1, 0.5}, (1 / T.fromtable({1, 2})):totable())
      assert.are.same({-1, -2}, (-T.fromtable({1, 2})):totable())
      assert.are.same({9, 8}, (10 - T.fromtable({1, 2})):totable())
      local ok, err = pcall(function() return a + T.zeros({4}) end)
      assert.is_false(ok)
      assert.truthy(err:find('add') and err:find('%[2, 3%]') and err:find('%[4%]'))
   end)

   it('computes unary functions', function()
      local x = T.fromtable({-2, -0.5, 0.5, 2})
      H.assertClose(x:abs(), {2, 0.5, 0.5, 2})
      H.assertClose(x:exp(), {math.exp(-2), math.exp(-0.5), math.exp(0.5), math.exp(2)})
      H.assertClose(x:abs():log(), {math.log(2), math.log(0.5), math.log(0.5), math.log(2)})
      H.assertClose(x:abs():pow(3), {8, 0.125, 0.125, 8})
      H.assertClose(x:clamp(-1, 1), {-1, -0.5, 0.5, 1})
      assert.are.same({0, 0, 1, 1}, x:gt(0):totable())
      assert.are.same({0, 0, 0, 1}, x:eq(2):totable())
      assert.are.same({-2, -0, 0, 2}, T.fromtable({-2.5, -0.5, 0.5, 2.5}):round():totable())
   end)

   it('reduces along a dimension and in total', function()
      local a = T.fromtable({{1, 5, 3}, {4, 2, 6}})
      assert.are.same({9, 12}, a:sum(2):totable())
      assert.are.same({2, 1}, a:sum(2):shape())
      assert.are.same({5, 7, 9}, a:sum(1):totable())
      assert.are.equal(21, a:sum():item())
      assert.are.equal(3.5, a:mean():item())
      local v, i = a:max(2)
      assert.are.same({5, 6}, v:totable())
      assert.are.same({2, 3}, i:totable())
      assert.are.same({2, 1, 2}, a:argmax(1):totable())
      assert.are.same({1}, T.fromtable({{3, 3}}):argmax(2):totable()) -- first maximum
      assert.are.equal(6, (a:max()))
   end)

   it('refuses max over a dimension longer than its float32 indices can count exactly (2^24)', function()
      local n = 2 ^ 24
      local last = T.zeros({1, n})
      last:narrow(2, n, 1):fill(1)
      local _, i = last:max(2)
      assert.are.equal(n, i:item()) -- 2^24 entries: the last index is still exact
      local over = T.zeros({1, n + 1})
      local ok, err = pcall(function() return over:max(2) end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find('max: dimension 2 has 16777217 entries; its indices (float32) are exact only up '
         .. 'to 2^24', 1, true))
   end)

   it('multiplies matrices and names the shapes when they do not fit', function()
      local a = T.fromtable({{1, 2}, {3, 4}, {5, 6}})
      local b = T.fromtable({{1, 0, 2}, {0, 1, 3}})
      assert.are.same({1, 2, 8, 3, 4, 18, 5, 6, 28}, a:matmul(b):totable())
      local ok, err = pcall(function() return T.zeros({4, 3}):matmul(T.zeros({5, 2})) end)
      assert.is_false(ok)
      assert.truthy(err:find('matmul: expected %[4, 3%] x %[3, N%], got %[4, 3%] x %[5, 2%]'))
      local ba = T.randn({3, 2, 4})
      local bb = T.randn({3, 4, 5})
      local bc = ba:matmul(bb)
      H.assertClose(bc:select(1, 2), ba:select(1, 2):matmul(bb:select(1, 2)), 1e-5, 1e-5)
   end)
end)

describe('autograd', function()
   local function param(shape) return T.randn(shape):requiresGrad(true) end

   it('checks every differentiable op against finite differences', function()
      snn.manualSeed(3)
      local a, b = param({3, 4}), param({3, 4})
      local r, c = param({4}), param({3, 1})
      local pos = (T.rand({3, 4}) + 0.5):requiresGrad(true)
      local checks = {
         {function(x, y) return x + y end, {a, b}},
         {function(x, y) return x - y end, {a, r}},
         {function(x, y) return x * y end, {a, c}},
         {function(x, y) return x / y end, {a, pos}},
         {function(x) return 3 - x * 2 + 1 end, {a}},
         {function(x) return 2 / x end, {pos}},
         {function(x) return -x end, {a}},
         {function(x) return x:abs() end, {pos}},
         {function(x) return x:exp() end, {a}},
         {function(x) return x:log() end, {pos}},
         {function(x) return x:sqrt() end, {pos}},
         {function(x) return x:pow(3) end, {a}},
         {function(x) return x:sigmoid() end, {a}},
         {function(x) return x:tanh() end, {a}},
         {function(x) return x:square() end, {a}},
         {function(x) return x:clamp(-0.5, 0.5) end, {a}},
         {function(x) return x:sum(2) end, {a}},
         {function(x) return x:sum() end, {a}},
         {function(x) return x:mean(1) end, {a}},
         {function(x) return (x:max(2)) end, {a}},
         {function(x, y) return x:matmul(y:transpose(1, 2)) end, {a, b}},
         {function(x) return x:transpose(1, 2):contiguous() end, {a}},
         {function(x) return x:reshape({2, 6}) end, {a}},
         {function(x) return x:narrow(2, 2, 2) end, {a}},
         {function(x) return x:select(1, 2) end, {a}},
         {function(x, y) return T.cat({x, y}, 1) end, {a, b}},
         {function(x, y) return T.stack({x, y}, 2) end, {a, b}},
         {function(x) return x:expand({2, 3, 4}) * 1 end, {c}},
         {function(x) return x:unsqueeze(1):permute({3, 2, 1}):contiguous() end, {a}},
         {function(x) return x:clone() end, {a}},
      }
      for i, chk in ipairs(checks) do
         local ok, err = pcall(H.gradcheck, chk[1], chk[2])
         assert(ok, 'check ' .. i .. ': ' .. tostring(err))
      end
   end)

   it('accumulates leaf gradients across backward calls until zeroGrad', function()
      local x = T.fromtable({1, 2, 3}):requiresGrad(true)
      ;(x * 2):sum():backward()
      assert.are.same({2, 2, 2}, x.grad:totable())
      ;(x * x):sum():backward()
      assert.are.same({4, 6, 8}, x.grad:totable())
      x:zeroGrad()
      assert.are.same({0, 0, 0}, x.grad:totable())
   end)

   it('sums gradients of a tensor used twice and frees the graph after backward', function()
      local x = T.fromtable({1, 2}):requiresGrad(true)
      local y = x * x + x
      local z = y:sum()
      z:backward()
      assert.are.same({3, 5}, x.grad:totable())
      assert.is_nil(y._node)
      assert.has_error(function() z:backward() end)
   end)

   it('keeps no intermediate result alive that no backward needs (the graph holds nodes, not tensors)', function()
      local x = T.randn({1000}):requiresGrad(true)
      local weak = setmetatable({}, {__mode = 'v'})
      local z
      do
         local y = x * 2 -- a scalar product's backward does not need x or y
         local w = y + 1 -- nor does a sum's
         weak.y, weak.w = y, w
         z = (w * w):sum() -- this product's backward keeps w
      end
      collectgarbage('collect')
      collectgarbage('collect')
      assert.is_nil(weak.y)
      assert.is_not_nil(weak.w)
      z:backward()
      local xv, g = x:totable(), x.grad:totable()
      for i = 1, 1000 do assert.is_true(math.abs(g[i] - 4 * (2 * xv[i] + 1)) <= 1e-4 * (1 + math.abs(g[i]))) end
      -- the backward let go of what its nodes kept
      collectgarbage('collect')
      collectgarbage('collect')
      assert.is_nil(weak.w)
   end)

   it('reads NaNs of every payload as NaN numbers (Debian\'s LuaJIT turned some into other types)', function()
      local ffi = require 'ffi'
      local t = T.empty({6})
      local bits = ffi.cast('uint32_t *', t:data())
      for i, b in ipairs({0xFFFFFFFF, 0xFF900001, 0xFFAC0001, 0x7FC00001, 0x3F800000, 0xFF800000}) do
         bits[i - 1] = b
      end
      local v = t:totable()
      for i = 1, 4 do assert.is_true(type(v[i]) == 'number' and v[i] ~= v[i], 'element ' .. i) end
      assert.are.same({1, -math.huge}, {v[5], v[6]})
      local x = t:narrow(1, 1, 1):item()
      assert.is_true(type(x) == 'number' and x ~= x)
      assert.truthy(tostring(t):find('nan', 1, true))
      local m = t:max()
      assert.is_true(type(m) == 'number' and m ~= m)
      local s = t:sum():item()
      assert.is_true(type(s) == 'number' and s ~= s)
   end)

   it('keeps noGrad to its own coroutine, also while that coroutine is suspended inside it', function()
      local x = T.ones({2}):requiresGrad(true)
      local co = coroutine.create(function()
         snn.noGrad(function()
            assert.is_true((x * 2):isLeaf())
            coroutine.yield()
            assert.is_true((x * 2):isLeaf())
         end)
         return x * 2
      end)
      assert.is_true(coroutine.resume(co))
      assert.is_false((x * 5):isLeaf(), 'the main thread records while the coroutine waits inside noGrad')
      local ok, y = coroutine.resume(co)
      assert.is_true(ok)
      assert.is_false(y:isLeaf(), 'recording is back after noGrad in the coroutine')
   end)

   it('does not record inside noGrad and restores recording afterwards', function()
      local x = T.ones({2}):requiresGrad(true)
      local y = snn.noGrad(function() return x * 3 end)
      assert.is_false(y:requiresGrad())
      assert.is_true((x * 3):requiresGrad())
      assert.has_error(function() snn.noGrad(function() error('boom') end) end)
      assert.is_true((x * 3):requiresGrad())
   end)

   it('takes an explicit output gradient', function()
      local x = T.fromtable({1, 2, 3}):requiresGrad(true)
      local y = x * 2
      y:backward(T.fromtable({1, 0, -1}))
      assert.are.same({2, 0, -2}, x.grad:totable())
      assert.has_error(function() (x * 2):backward() end)
   end)
end)

-- err must be a message that names fname and contains every other string
local function assertError(fname, f, ...)
   local ok, err = pcall(f)
   assert(not ok, fname .. ': expected an error')
   err = tostring(err)
   assert(err:find(fname .. ':', 1, true), 'message does not name ' .. fname .. ': ' .. err)
   for _, s in ipairs({...}) do assert(err:find(s, 1, true), 'message lacks "' .. s .. '": ' .. err) end
end

describe('views with more than 8 dimensions', function()
   it('are refused before the shape buffers are written, and the process stays sound', function()
      local nine = {1, 1, 1, 1, 1, 1, 1, 1, 1}
      local forty = {}
      for i = 1, 40 do forty[i] = 1 end
      local t = T.zeros({1})
      for _ = 1, 3 do
         assertError('view', function() return t:view(nine) end, 'at most 8', 'got 9')
         assertError('reshape', function() return t:reshape(forty) end, 'at most 8', 'got 40')
         assertError('expand', function() return t:expand(nine) end, 'at most 8')
         assertError('unsqueeze', function() return T.zeros({1, 1, 1, 1, 1, 1, 1, 1}):unsqueeze(1) end, 'at most 8')
         collectgarbage('collect')
      end
      -- the heap is intact: allocate, compute and collect again
      local x = T.randn({100, 100})
      assert.are.equal(2 * x:sum():item(), (x * 2):sum():item())
      collectgarbage('collect')
   end)

   it('accept exactly 8 dimensions', function()
      local e = T.ones({1}):expand({2, 1, 1, 1, 1, 1, 1, 3})
      assert.are.same({2, 1, 1, 1, 1, 1, 1, 3}, e:shape())
      assert.are.equal(8, T.zeros({1, 1, 1, 1, 1, 1, 1}):unsqueeze(1):dim())
   end)
end)

describe('sizes and permutations', function()
   it('must be integers in range', function()
      local t = T.zeros({1})
      assertError('expand', function() return t:expand({3.5}) end, '3.5')
      assertError('expand', function() return t:expand({'a'}) end)
      assertError('expand', function() return t:expand({2 ^ 32 + 2}) end)
      assertError('expand', function() return t:expand(nil) end)
      assertError('permute', function() return T.zeros({2, 3}):permute({2, 1.5}) end, '1.5')
      assertError('view', function() return T.zeros({0}):view({2 ^ 32, 0}) end)
      assertError('fromtable', function() return T.fromtable({{1, 2}}, {'a'}) end)
   end)

   it('stride(d) checks d like size(d) and counts negative d from the end', function()
      local t = T.zeros({2, 3})
      assert.are.equal(3, t:stride(1))
      assert.are.equal(1, t:stride(-1))
      assert.are.equal(3, t:stride(-2))
      assertError('stride', function() return t:stride(1000000) end, 'out of range')
      assertError('stride', function() return t:stride(5) end, 'out of range')
      assertError('stride', function() return t:stride(0) end, 'out of range')
      assertError('stride', function() return t:stride(-3) end, 'out of range')
      assertError('stride', function() return t:stride('x') end)
   end)

   it('fromPointer needs a non-NULL pointer', function()
      assertError('fromPointer', function() return T.fromPointer(nil, {4}) end, 'pointer')
      assertError('fromPointer', function() return T.fromPointer(12345, {4}) end, 'pointer')
      local ffi = require 'ffi'
      assertError('fromPointer', function() return T.fromPointer(ffi.cast('float *', nil), {4}) end, 'NULL')
      local src = T.fromtable({1, 2, 3, 4})
      assert.are.same({1, 2, 3, 4}, T.fromPointer(src:data(), {2, 2}):totable())
   end)

   it('fromPointer reads no more than a float array holds, and only floats', function()
      local ffi = require 'ffi'
      assert.are.same({1, 2, 3}, T.fromPointer(ffi.new('float[3]', 1, 2, 3), {3}):totable())
      assert.are.same({1, 2}, T.fromPointer(ffi.new('float[3]', 1, 2, 3), {2}):totable())
      assertError('fromPointer', function() return T.fromPointer(ffi.new('float[2]', 1, 2), {3}) end,
         'the array holds 2 floats, the shape [3] needs 3')
      assertError('fromPointer', function() return T.fromPointer(ffi.new('int[3]', 1, 2, 3), {3}) end,
         'expected a pointer to floats (or void *) or a float array, got ctype<int [3]>')
      assertError('fromPointer', function() return T.fromPointer(ffi.new('double[3]', 1, 2, 3), {3}) end, 'double')
      -- a void * (malloc, another C library's buffer) is taken on trust, as a float *
      local buf = ffi.new('float[2]', 5, 6)
      assert.are.same({5, 6}, T.fromPointer(ffi.cast('void *', buf), {2}):totable())
      assert.are.same({5, 6}, T.fromPointer(ffi.cast('const void *', buf), {2}):totable())
   end)
end)

describe('random fills and maths take only sensible arguments', function()
   it('refuses reversed or non-finite ranges and wrong types, naming the method', function()
      local a = T.zeros({4})
      assertError('uniform_', function() return a:uniform_(1, 0) end, '1, 0')
      assertError('uniform_', function() return a:uniform_('x') end)
      assertError('uniform_', function() return a:uniform_(0, 1 / 0) end)
      assertError('normal_', function() return a:normal_(0, -1) end, '-1')
      assertError('normal_', function() return a:normal_(0 / 0) end)
      assertError('bernoulli_', function() return a:bernoulli_('x') end)
      assertError('bernoulli_', function() return a:bernoulli_(0 / 0) end)
      assertError('bernoulli', function() return T.bernoulli({2}, 0 / 0) end)
      assertError('uniform_', function() return T.zeros({3, 4}):t():uniform_() end, 'contiguous')
      assert.are.same({0, 0, 0, 0}, a:totable())
      -- equal bounds and zero spread are fine
      assert.are.same({2, 2, 2, 2}, a:uniform_(2, 2):totable())
      assert.are.same({3, 3, 3, 3}, a:normal_(3, 0):totable())
   end)

   it('maximum, minimum and ^ name themselves for wrong operands', function()
      local a = T.fromtable({1, 5, 3})
      assertError('maximum', function() return T.maximum(nil, nil) end)
      assertError('maximum', function() return T.maximum(a, 'x') end)
      assertError('minimum', function() return T.minimum({}, 1) end)
      assertError('pow', function() return 'x' ^ a end)
      assert.are.same({2, 5, 3}, T.maximum(2, a):totable())
      assert.are.same({1, 2, 2}, T.minimum(a, 2):totable())
      assert.are.same({1, 3, 3}, T.minimum(a, T.fromtable({4, 3, 3})):totable())
   end)
end)

describe('package settings', function()
   it('check seeds, devices and cache limits', function()
      assertError('manualSeed', function() snn.manualSeed(2 ^ 70) end, '2^53')
      assertError('manualSeed', function() snn.manualSeed(1, 'gpu') end, "'cpu' or 'cuda'")
      assertError('memoryStats', function() return snn.memoryStats('bogus') end, "'cpu' or 'cuda'", 'bogus')
      assertError('emptyCache', function() snn.emptyCache('bogus') end, "'cpu' or 'cuda'")
      assertError('setCacheLimit', function() snn.setCacheLimit(-1) end, '-1')
      assertError('setCacheLimit', function() snn.setCacheLimit('x') end)
      assertError('setCacheLimit', function() snn.setCacheLimit(0 / 0) end)
      assertError('setCacheLimit', function() snn.setCacheLimit(1, 'bogus') end, "'cpu' or 'cuda'")
      local limit = snn.memoryStats('cpu').cacheLimit
      snn.setCacheLimit(limit)
      assert.are.equal(limit, snn.memoryStats().cacheLimit)
      snn.manualSeed(2 ^ 53)
   end)

   it('clamps an absurd thread count instead of crashing OpenMP', function()
      local prev = snn.getNumThreads()
      assertError('setNumThreads', function() snn.setNumThreads(0) end)
      assertError('setNumThreads', function() snn.setNumThreads(1 / 0) end)
      assertError('setNumThreads', function() snn.setNumThreads(2.5) end)
      local ok, err = pcall(function()
         snn.setNumThreads(100000)
         local n = snn.getNumThreads()
         assert(n >= 1 and n <= 1024, 'thread count ' .. n .. ' not clamped')
         local x = T.ones({1000, 1000})
         return (x * 2):sum():item()
      end)
      snn.setNumThreads(prev)
      assert(ok, err)
      assert.are.equal(2e6, err)
      assert.are.equal(prev, snn.getNumThreads())
   end)
end)

describe('backward through a freed or failed graph', function()
   it('refuses a second backward through an intermediate the first one freed, instead of dropping gradients', function()
      local x = T.ones({3}):requiresGrad(true)
      local y = x * 2
      local z, w = y * 3, y * 4
      z:sum():backward()
      assertError('backward', function() w:sum():backward() end, 'freed by an earlier backward() through a result it shares')
      assert.are.same({6, 6, 6}, x.grad:totable())
      -- both at once
      x.grad = nil
      local y2 = x * 2
      ;(y2 * 3 + y2 * 4):sum():backward()
      assert.are.same({14, 14, 14}, x.grad:totable())
   end)

   it('keeps recording on after a backward that failed while adding into a leaf', function()
      local p = T.ones({2}):requiresGrad(true)
      p.grad = T.zeros({3})
      assertError('backward', function() (p * 2):sum():backward() end, 'holds a grad of tensor [3]')
      -- raised inside autograd's protected walk, the error still points at the caller's line
      local line = debug.getinfo(1, 'l').currentline + 1
      local ok, err = pcall(function() (p * 2):sum():backward() end)
      assert.truthy(not ok and err:find('tensor_spec.lua:' .. line .. ': backward:', 1, true), err)
      local q = T.ones({2}):requiresGrad(true)
      assert.is_true((q * 2):requiresGrad())
   end)
end)

describe('in-place writes between forward and backward', function()
   it('are caught at backward, before any gradient reaches a leaf (they made gradients silently wrong)', function()
      local x = T.fromtable({1, 2, 3}):requiresGrad(true)
      local a = T.fromtable({1, 2, 3})
      local y = (x * a):sum()
      a:mul_(10)
      assertError('backward', function() y:backward() end, 'input 2 of the op', 'was changed in place')
      assert.is_nil(x.grad)
      -- a view's write counts for the whole storage; so does an optimizer step
      local w = T.ones({2, 3}):requiresGrad(true)
      local z = (w * w):sum()
      w:detach():narrow(1, 1, 1):fill(5)
      assertError('backward', function() z:backward() end, 'was changed in place')
      local opt = snn.optim.SGD({w}, {lr = 0.1})
      z = (w * w):sum()
      w.grad = T.ones({2, 3})
      opt:step()
      w.grad = nil
      assertError('backward', function() z:backward() end, 'was changed in place')
      -- forward, backward, step, in that order, as training does
      z = (w * w):sum()
      z:backward()
      opt:step()
      assert.is_true(w.grad:abs():sum():item() > 0)
   end)
end)

describe('in-place writes', function()
   it('refuse expanded views, whose elements share memory, and name the op for strided ones', function()
      local e = T.zeros({1}):expand({3})
      assertError('fill', function() e:fill(3) end, 'expanded view [3]')
      assertError('copy', function() e:copy(T.fromtable({1, 2, 3})) end, 'expanded view [3]')
      assertError('add_', function() e:add_(1) end, 'must be contiguous')
      local t = T.zeros({3, 2}):t()
      assertError('mul_', function() t:mul_(2) end, 'tensor [2, 3] must be contiguous')
      -- a size-1 dimension with stride 0 repeats nothing: writable
      local one = T.zeros({2, 1}):expand({2, 1})
      one:fill(1)
      assert.are.equal(2, one:sum():item())
   end)
end)

describe('gradients given back during backward', function()
   local A = require 'slayer.autograd'

   it('lets a backward function run another backward', function()
      local w = T.ones({3}):requiresGrad(true)
      local aux = (w * 3):sum()
      local x = T.ones({3}):requiresGrad(true)
      local function op(t)
         return A.record(t:detach():clone(), {t}, function(g) aux:backward() return g * 2 end, 1)
      end
      op(x * 1):sum():backward()
      assert.are.same({2, 2, 2}, x.grad:totable())
      assert.are.same({3, 3, 3}, w.grad:totable())
   end)

   it('makes a gradient kept past its backward function raise an error when used, not crash', function()
      local kept
      local function op(t)
         return A.record(t:detach():clone(), {t}, function(g) kept = g return g end, 1)
      end
      local x = T.ones({4}):requiresGrad(true)
      ;(op(x * 2) * 3):sum():backward()
      assert.are.same({6, 6, 6, 6}, x.grad:totable())
      local ok, err = pcall(function() return kept:sum() end)
      assert.is_false(ok)
      assert.truthy(tostring(err):find('this tensor was released', 1, true), err)
      assert.are.equal('tensor (released)', tostring(kept))
   end)
end)

describe('backward twice', function()
   it('says the graph was freed, and a leaf keeps its shape in .grad', function()
      local x = T.fromtable({1, 2, 3}):requiresGrad(true)
      local y = (x * 2):sum()
      y:backward()
      assertError('backward', function() y:backward() end, 'already freed')
      local z = x * 2
      -- the gradient must have the result's shape (a [3, 1] or transposed one would be misread)
      assertError('backward', function() z:backward(T.ones({3, 1})) end, 'gradient [3, 1] on cpu does not match result [3]')
      z:backward(T.ones({3}))
      assert.are.same({3}, x.grad:shape())
      assert.are.same({4, 4, 4}, x.grad:totable())
      -- a tensor that never required a gradient still says so
      assertError('backward', function() T.ones({1}):backward() end, 'does not require a gradient')
   end)
end)
