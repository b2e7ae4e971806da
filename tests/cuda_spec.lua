--[[
The CUDA back end against the CPU: every op runs on random inputs on both
devices and the results are compared -- forward results within 1e-5
relative (sums and products: relative to the magnitudes summed), gradients
within 1e-4 -- plus the generator's numbers, the allocator's reuse, device
errors and strided copies.  The helpers are in tests/support/cuda.lua.

Without a usable GPU the comparisons report themselves as skipped (with the
reason) and only the refusal path is tested.  SLAYER_CUDA_SPEC_DEVICE=cpu runs
the comparisons with the CPU standing in for the GPU: a check of this spec's
own logic on machines without one.  Whatever the machine, the list of CPU ops
still waiting for a CUDA twin is reported (skipped while any is missing).
]]
local snn = require 'slayer'
local T = snn.tensor
local L = require 'slayer.ffi'
local C = L.C
local G = require 'support.cuda'

local DEV, FWD, GRAD = G.DEV, G.FWD, G.GRAD
local dev, close, closeNorm, identical = G.dev, G.close, G.closeNorm, G.identical

describe('CUDA coverage', function()
   local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/tests/[^/]*$') or '.'
   local lib = os.getenv('SLAYER_LIB')
   local libdir = lib and lib:match('^(.*)/[^/]*$') or (os.getenv('SLAYER_BUILD') or (root .. '/build'))
   local cov, why = G.coverage(root, libdir)
   if not cov then
      pending('CUDA coverage not checked: ' .. why)
      return
   end
   it('exports a twin for the foundation ops, the copies and the allocator', function()
      local missing = {}
      for _, m in ipairs(cov.missing) do missing[m] = true end
      for _, name in ipairs({'sl_binary_cuda', 'sl_binary_scalar_cuda', 'sl_unary_cuda', 'sl_clamp_cuda',
         'sl_axpy_cuda', 'sl_where_mask_cuda', 'sl_sum_dim_cuda', 'sl_max_dim_cuda', 'sl_scatter_dim_cuda',
         'sl_sum_to_cuda', 'sl_gemm_cuda', 'sl_bmm_cuda', 'sl_rand_uniform_cuda', 'sl_rand_normal_cuda',
         'sl_rand_bernoulli_cuda', 'sl_sgd_step_cuda', 'sl_adam_step_cuda', 'sl_fill_cuda', 'sl_copy_cuda',
         'sl_cuda_malloc', 'sl_cuda_free', 'sl_cuda_memcpy', 'sl_sum_all_cuda', 'sl_max_all_cuda',
         'sl_min_all_cuda', 'sl_count_nonzero_cuda'}) do
         assert.is_nil(missing[name], name .. ' is missing')
      end
   end)
   if #cov.missing > 0 then
      pending(#cov.missing .. ' of ' .. #cov.wanted .. ' CPU ops have no CUDA twin yet: '
         .. table.concat(cov.missing, ', '))
   else
      it('has a CUDA twin for every op the CPU core dispatches', function() end)
   end
end)

if not G.available then
   describe('CUDA back end', function()
      pending(G.reason)

      it('refuses GPU tensors with an error naming CUDA, and the CPU keeps working', function()
         assert.is_false(snn.cuda.isAvailable())
         assert.are.equal(0, snn.cuda.deviceCount())
         local ok, err = pcall(T.zeros, {2}, 'cuda')
         assert.is_false(ok)
         assert.truthy(tostring(err):find('CUDA'))
         ok, err = pcall(function() return T.ones({3}):cuda() end)
         assert.is_false(ok)
         assert.truthy(tostring(err):find('CUDA'))
         ok, err = pcall(snn.cuda.synchronize)
         assert.is_false(ok)
         assert.truthy(tostring(err):find('cuda.synchronize'))
         assert.are.equal(6, (T.ones({3}) + 1):sum():item())
      end)
   end)
   return
end

describe('GPU tensors', function()
   it('move to the device and back unchanged, and report their device', function()
      snn.manualSeed(1)
      local x = T.randn({3, 5, 7})
      local g = dev(x)
      assert.are.equal(DEV, g.device)
      assert.are.same({3, 5, 7}, g:shape())
      identical(g:cpu(), x, 'round trip')
      assert.are.equal(DEV, T.zeros({2, 2}, DEV).device)
      identical(T.full({4}, -2.5, DEV), T.full({4}, -2.5), 'full')
      identical(T.zeros({5}, DEV), T.zeros({5}), 'zeros')
   end)

   it('copy strided views on the device: transpose, narrow, expand, cat, fill', function()
      snn.manualSeed(2)
      local x = T.randn({6, 4, 5})
      local g = dev(x)
      identical(g:transpose(1, 3):contiguous(), x:transpose(1, 3):contiguous(), 'transpose')
      identical(g:narrow(2, 2, 2):contiguous(), x:narrow(2, 2, 2):contiguous(), 'narrow')
      identical(g:narrow(3, 1, 1):expand(6, 4, 9):contiguous(), x:narrow(3, 1, 1):expand(6, 4, 9):contiguous(), 'expand')
      identical(T.cat({g, g:narrow(2, 1, 3)}, 2), T.cat({x, x:narrow(2, 1, 3)}, 2), 'cat')
      local gc, xc = g:clone(), x:clone()
      gc:narrow(3, 2, 3):fill(7)
      xc:narrow(3, 2, 3):fill(7)
      identical(gc, xc, 'strided fill')
      gc:select(1, 2):copy(g:select(1, 5):t():contiguous():t())
      xc:select(1, 2):copy(x:select(1, 5):t():contiguous():t())
      identical(gc, xc, 'strided copy into a strided view')
      -- host to device into a strided destination
      local dst = T.zeros({4, 6}, DEV)
      dst:t():copy(T.arange(24):view(6, 4))
      identical(dst, T.arange(24):view(6, 4):t():contiguous(), 'copy from the host into a view')
   end)
end)

describe('element-wise ops on the GPU', function()
   it('binary ops broadcast like the CPU', function()
      snn.manualSeed(3)
      local a = (T.randn({4, 1, 5, 3}) * 2):round() -- ties for the comparisons
      local b = (T.randn({6, 1, 3}) * 2):round()
      local ga, gb = dev(a), dev(b)
      local ops = {
         {'add', T.add}, {'sub', T.sub}, {'mul', T.mul}, {'maximum', T.maximum}, {'minimum', T.minimum},
         {'gt', a.gt}, {'ge', a.ge}, {'lt', a.lt}, {'le', a.le}, {'eq', a.eq}, {'ne', a.ne},
      }
      for _, op in ipairs(ops) do close(op[2](ga, gb), op[2](a, b), FWD, op[1]) end
      local pb = b:abs() + 0.5
      close(T.div(ga, dev(pb)), T.div(a, pb), FWD, 'div')
      local pa = a:abs() + 0.25
      close(dev(pa):pow(gb), pa:pow(b), FWD, 'pow')
      -- long flat operands, one a scalar broadcast
      local x, y = T.randn({10007}), T.randn({1})
      close(dev(x) * dev(y), x * y, FWD, 'flat broadcast')
      close(dev(x) - dev(x:clone():mul_(0.5)), x - x:clone():mul_(0.5), FWD, 'flat')
   end)

   it('scalar ops in both orders, unary maths, clamp, axpy and masks', function()
      snn.manualSeed(4)
      local a = T.randn({7, 301})
      local g = dev(a)
      close(g + 2, a + 2, FWD, 'a + s')
      close(3 - g, 3 - a, FWD, 's - a')
      close(g / 3, a / 3, FWD, 'a / s')
      close(3 / (g:abs() + 1), 3 / (a:abs() + 1), FWD, 's / a')
      close(g:gt(0.1), a:gt(0.1), FWD, 'a > s')
      local pos = a:abs() + 0.1
      local gp = dev(pos)
      local unary = {
         {'neg', function(t) return -t end}, {'abs', function(t) return t:abs() end},
         {'exp', function(t) return t:exp() end}, {'sign', function(t) return t:sign() end},
         {'tanh', function(t) return t:tanh() end}, {'sigmoid', function(t) return t:sigmoid() end},
         {'relu', function(t) return t:relu() end}, {'floor', function(t) return (t * 3):floor() end},
         {'ceil', function(t) return (t * 3):ceil() end}, {'round', function(t) return (t * 2):round() end},
         {'square', function(t) return t:square() end},
      }
      for _, op in ipairs(unary) do close(op[2](g), op[2](a), FWD, op[1]) end
      close(gp:log(), pos:log(), FWD, 'log')
      close(gp:sqrt(), pos:sqrt(), FWD, 'sqrt')
      close(T._rawUnary(C.SL_RSQRT, gp), T._rawUnary(C.SL_RSQRT, pos), FWD, 'rsqrt')
      -- round half to even, as the CPU
      local halves = T.fromtable({-2.5, -1.5, -0.5, 0.5, 1.5, 2.5})
      identical(dev(halves):round(), halves:round(), 'round halves')
      close(g:clamp(-0.5, 0.7), a:clamp(-0.5, 0.7), FWD, 'clamp')
      local y, gy = a:clone(), g:clone()
      y:add_(pos, -0.75)
      gy:add_(gp, -0.75)
      close(gy, y, FWD, 'axpy')
      local mask = a:gt(0)
      local out, gout = T.empty(a:shape()), T.empty(a:shape(), DEV)
      assert.are.equal(0, C.sl_where_mask(out._c, pos._c, mask._c))
      assert.are.equal(0, C.sl_where_mask(gout._c, gp._c, dev(mask)._c))
      identical(gout, out, 'where_mask')
   end)
end)

describe('reductions on the GPU', function()
   it('sum along every dim, on short and long rows and few or many outputs', function()
      snn.manualSeed(5)
      for _, shape in ipairs({{7, 300, 5}, {3, 5000}, {20000, 3}, {8192, 2}, {2, 3, 1}}) do
         local a = T.randn(shape)
         local g = dev(a)
         for d = 1, #shape do
            close(g:sum(d), a:sum(d), FWD, 'sum(' .. d .. ') of ' .. T.shapeStr(a), a:abs():sum(d))
         end
      end
   end)

   it('max along a dim, values and first indices, NaN first like the CPU', function()
      snn.manualSeed(6)
      for _, shape in ipairs({{5, 40, 6}, {4, 3000}, {70000, 3}}) do
         local a = (T.randn(shape) * 3):round() -- ties: the first index must win
         local g = dev(a)
         for d = 1, #shape do
            local v, i = a:max(d)
            local gv, gi = g:max(d)
            identical(gv, v, 'max values')
            identical(gi, i, 'max indices')
         end
      end
      local withNaN = T.fromtable({{1, 0 / 0, 3, 0 / 0}, {2, 5, 5, 1}})
      local v, i = withNaN:max(2)
      local gv, gi = dev(withNaN):max(2)
      identical(gv, v, 'max with NaN')
      identical(gi, i, 'max index with NaN')
   end)

   it('sum, max, min and non-zero counts of whole tensors', function()
      snn.manualSeed(7)
      local a = T.randn({3000001})
      local g = dev(a)
      local s, gs = a:sum():item(), g:sum():item()
      assert.is_true(math.abs(gs - s) <= 1e-5 * a:abs():sum():item(), 'sum ' .. gs .. ' vs ' .. s)
      local m, mi = a:max()
      local gm, gmi = g:max()
      assert.are.equal(m, gm)
      assert.are.equal(mi, gmi)
      local n, ni = a:min()
      local gn, gni = g:min()
      assert.are.equal(n, gn)
      assert.are.equal(ni, gni)
      local spikes = T.bernoulli({12, 50, 300}, 0.05)
      assert.are.equal(spikes:countNonzero(), dev(spikes):countNonzero())
      -- ties keep the first index; a later NaN is ignored, a first one kept
      local t = T.fromtable({1, 4, 0 / 0, 4, -2})
      local v, i = dev(t):max()
      assert.are.equal(4, v)
      assert.are.equal(2, i)
      local v2 = dev(T.fromtable({0 / 0, 1, 2})):max()
      assert.is_true(v2 ~= v2)
   end)

   it('sums broadcast gradients back to operand shapes', function()
      snn.manualSeed(8)
      local cases = {
         {{5, 4, 3}, {4, 1}}, {{5, 4, 3}, {1}}, {{3000, 7}, {1, 7}}, {{4000, 3}, {4000, 1}},
         {{12, 10, 300}, {10, 1}}, {{2, 3, 4, 5}, {3, 1, 5}}, {{6, 1, 2}, {1, 1, 2}},
      }
      for _, c in ipairs(cases) do
         local a, target = T.randn(c[1]), T.zeros(c[2])
         close(T.sumTo(dev(a), dev(target)), T.sumTo(a, target), FWD,
            'sumTo ' .. T.shapeStr(a) .. ' -> ' .. T.shapeStr(target), T.sumTo(a:abs(), target))
      end
   end)
end)

describe('matrix products on the GPU (cuBLAS, float32)', function()
   -- rounding error of a product scales with |a| @ |b|
   local function bound(a, ta, b, tb, alpha, beta, c)
      local oa, ob = ta == 1 and a:t() or a, tb == 1 and b:t() or b
      local r = oa:abs():matmul(ob:abs()) * math.abs(alpha)
      if c then r = r + c:abs() * math.abs(beta) end
      return r
   end

   it('gemm with every transpose, alpha and beta', function()
      snn.manualSeed(9)
      local m, n, k = 37, 29, 53
      for ta = 0, 1 do
         for tb = 0, 1 do
            local a = ta == 1 and T.randn({k, m}) or T.randn({m, k})
            local b = tb == 1 and T.randn({n, k}) or T.randn({k, n})
            local c = T.randn({m, n})
            local gc = dev(c)
            local bnd = bound(a, ta, b, tb, 0.5, -1.5, c)
            assert.are.equal(0, C.sl_gemm(c._c, a._c, ta, b._c, tb, 0.5, -1.5))
            assert.are.equal(0, C.sl_gemm(gc._c, dev(a)._c, ta, dev(b)._c, tb, 0.5, -1.5), L.lastError())
            close(gc, c, FWD, 'gemm ta=' .. ta .. ' tb=' .. tb, bnd)
         end
      end
      local a, b = T.randn({64, 300}), T.randn({300, 48})
      close(dev(a):matmul(dev(b)), a:matmul(b), FWD, 'matmul', bound(a, 0, b, 0, 1, 0))
   end)

   it('batched products, with a batch-1 operand broadcast', function()
      snn.manualSeed(10)
      local a, b = T.randn({5, 7, 11}), T.randn({1, 11, 13})
      close(dev(a):matmul(dev(b)), a:matmul(b), FWD, 'bmm broadcast b', a:abs():matmul(b:abs()))
      local c, d = T.randn({1, 7, 11}), T.randn({5, 11, 13})
      close(dev(c):matmul(dev(d)), c:matmul(d), FWD, 'bmm broadcast a', c:abs():matmul(d:abs()))
   end)
end)

describe('random numbers on the GPU', function()
   it('draw the CPU generator numbers for the same seed', function()
      for _, n in ipairs({1, 7, 100003}) do
         snn.manualSeed(42)
         local u, z, b = T.rand({n}), T.randn({n}), T.bernoulli({n}, 0.3)
         local u2 = T.empty({n}):uniform_(-1, 2)
         snn.manualSeed(42)
         local gu, gz, gb = T.rand({n}, DEV), T.randn({n}, DEV), T.bernoulli({n}, 0.3, DEV)
         local gu2 = T.empty({n}, DEV):uniform_(-1, 2)
         identical(gu, u, 'uniform')
         identical(gb, b, 'bernoulli')
         identical(gu2, u2, 'uniform(-1, 2)')
         -- Box-Muller through CUDA's log/sin/cos: within rounding
         close(gz, z, FWD, 'normal')
      end
   end)

   it('advances the CUDA generator by whole blocks, independently of the CPU one', function()
      if DEV == 'cuda' then
         snn.manualSeed(5)
         local cpuFirst = T.rand({4})
         snn.manualSeed(5)
         T.rand({10}, DEV)
         assert.are.equal(0, T.maxAbsDiff(T.rand({4}), cpuFirst))
      end
      snn.manualSeed(5)
      local first = T.rand({10}, DEV) -- blocks 0..2
      local second = T.rand({4}, DEV) -- block 3
      snn.manualSeed(5)
      local all = T.rand({16}, DEV)
      identical(second, all:narrow(1, 13, 4), 'next call starts at the next block')
      identical(first, all:narrow(1, 1, 10), 'first call')
   end)
end)

describe('optimizer steps on the GPU', function()
   local function run(device, Opt, opts)
      snn.manualSeed(11)
      local p = T.randn({33, 17}):to(device):requiresGrad(true)
      local q = T.randn({17}):to(device):requiresGrad(true)
      local opt = Opt({p, q}, opts)
      local x = T.randn({9, 33}):to(device)
      for _ = 1, 3 do
         opt:zeroGrad()
         local loss = ((x:matmul(p) + q):tanh()):square():sum()
         loss:backward()
         opt:step()
      end
      return p, q
   end

   it('SGD with momentum and Nesterov, Adam with amsgrad and Nadam match the CPU', function()
      local cases = {
         {'SGD', snn.optim.SGD, {lr = 0.1, momentum = 0.9, nesterov = true, weightDecay = 1e-3}},
         {'Adam', snn.optim.Adam, {lr = 0.01, amsgrad = true, weightDecay = 1e-3}},
         {'Nadam', snn.optim.Nadam, {lr = 0.01, weightDecay = 1e-3}},
      }
      for _, c in ipairs(cases) do
         local p, q = run('cpu', c[2], c[3])
         local gp, gq = run(DEV, c[2], c[3])
         closeNorm(gp, p, GRAD, c[1] .. ' weights')
         closeNorm(gq, q, GRAD, c[1] .. ' bias')
      end
   end)
end)

describe('moving a model between devices', function()
   it('net:cuda() moves parameters in place and the optimizer state follows them', function()
      local Net = snn.class('CudaSpecNet', snn.Module)
      function Net:__init()
         snn.Module.__init(self)
         self.w = T.randn({6, 4}):requiresGrad(true)
      end
      function Net:forward(x) return x:matmul(self.w):tanh() end
      local function train(moveAfter)
         snn.manualSeed(14)
         local net = Net()
         local opt = snn.optim.Adam(net:parameters(), {lr = 0.05, amsgrad = true})
         local x = T.randn({5, 6})
         for step = 1, 4 do
            if step == moveAfter + 1 then
               net:to(DEV)
               x = x:to(DEV)
            end
            opt:zeroGrad()
            net(x):square():sum():backward()
            opt:step()
         end
         return net, opt
      end
      local cpuNet = train(4)
      local net, opt = train(2)
      assert.are.equal(DEV, net.w.device)
      assert.are.equal(DEV, net.w.grad.device)
      assert.are.equal(DEV, opt.state[1].m.device)
      assert.are.equal(DEV, opt.state[1].vmax.device)
      closeNorm(net.w, cpuNet.w, GRAD, 'weights trained on both devices')
      net:cpu()
      assert.are.equal('cpu', net.w.device)
   end)
end)

describe('gradients on the GPU', function()
   it('agree with the CPU through broadcasting, reductions, max and products', function()
      snn.manualSeed(12)
      local function f(x, w, b)
         local h = (x:matmul(w) + b):sigmoid()           -- gemm, broadcast add, sumTo
         local m = h:max(2)                               -- scatter in backward
         local s = (h * h:sum(1)):sum(2)                  -- sum_dim + expand
         return (m * s + (x:narrow(2, 1, 3):exp() / 3):sum()):sum()
      end
      local x, w, b = T.randn({8, 20}), T.randn({20, 15}) * 0.2, T.randn({15})
      -- the row maxima are clear (no near-ties that rounding could flip)
      local h = (x:matmul(w) + b):sigmoid()
      for r = 1, 8 do
         local row = h:select(1, r):totable()
         table.sort(row)
         assert.is_true(row[15] - row[14] > 1e-4)
      end
      local inputs = {}
      for _, device in ipairs({'cpu', DEV}) do
         local xi, wi, bi = x:to(device):requiresGrad(true), w:to(device):requiresGrad(true), b:to(device):requiresGrad(true)
         f(xi, wi, bi):backward()
         inputs[device] = {xi, wi, bi}
      end
      for k, name in ipairs({'x', 'w', 'b'}) do
         closeNorm(inputs[DEV][k].grad, inputs.cpu[k].grad, GRAD, 'gradient of ' .. name)
      end
   end)
end)

describe('mixing devices', function()
   it('raises an error naming both devices', function()
      local ok, err = pcall(function() return T.ones({2}) + T.ones({2}, DEV) end)
      if DEV == 'cpu' then return end
      assert.is_false(ok)
      assert.truthy(err:find('cpu') and err:find('cuda'))
      -- the C dispatch point says which arguments
      local out = T.empty({2})
      local rc = C.sl_binary(C.SL_ADD, out._c, T.ones({2})._c, T.ones({2}, DEV)._c)
      assert.are_not.equal(0, rc)
      local msg = L.lastError()
      assert.truthy(msg:find('different devices') and msg:find('argument 3 on cuda'), msg)
   end)
end)

if DEV == 'cuda' then
   describe('the CUDA runtime', function()
      it('names the device and waits for queued work', function()
         assert.is_true(#snn.cuda.deviceName() > 0)
         assert.is_true(snn.cuda.deviceCount() >= 1)
         local x = T.randn({1000}, 'cuda')
         for _ = 1, 20 do x = x * 1.0001 end
         snn.cuda.synchronize()
      end)

      it('reuses cached device memory: no cudaMalloc after the first training steps', function()
         snn.manualSeed(13)
         local w = T.randn({256, 128}, 'cuda'):requiresGrad(true)
         local opt = snn.optim.Adam({w}, {lr = 1e-3})
         local x = T.randn({64, 256}, 'cuda')
         local function step()
            opt:zeroGrad()
            local loss = x:matmul(w):tanh():sum()
            loss:backward()
            opt:step()
            collectgarbage('collect')
         end
         step(); step()
         local s1 = snn.cuda.memoryStats()
         for _ = 1, 5 do step() end
         local s2 = snn.cuda.memoryStats()
         assert.are.equal(s1.systemAllocs, s2.systemAllocs)
         assert.is_true(s2.allocCalls > s1.allocCalls)
         assert.are.equal(s1.liveBytes, s2.liveBytes)
         assert.is_true(s2.reservedBytes >= s2.liveBytes)
         snn.cuda.emptyCache()
         assert.are.equal(0, snn.cuda.memoryStats().cachedBytes)
      end)

      it('reports errors found inside kernels at the next synchronisation', function()
         local out, g = T.empty({2, 3}, 'cuda'), T.ones({1, 3}, 'cuda')
         local bad = T.fromtable({{0, 5, 1}}):cuda() -- index 5 of 2
         assert.are.equal(0, C.sl_scatter_dim(out._c, bad._c, g._c, 0))
         local ok, err = pcall(snn.cuda.synchronize)
         assert.is_false(ok)
         assert.truthy(err:find('max backward') and err:find('out of range'), err)
         snn.cuda.synchronize() -- reported once
         assert.are.equal(3, T.ones({3}, 'cuda'):sum():item())
      end)
   end)
end
