local snn = require 'slayer'
local H = require 'support.helpers'
local T = snn.tensor

-- A scripted sequence of gradients; each optimizer's parameter trajectory is
-- recomputed here in Lua doubles from the textbook/reference equations and
-- compared with the float32 C update.
local p0 = {0.5, -1.25, 2.0, 0.0, -0.3}
local grads = {
   {0.1, -0.2, 0.3, 0.0, 1.5},
   {-0.4, 0.5, 0.05, 1e-3, -2.0},
   {0.2, 0.2, -0.6, -0.01, 0.7},
   {1.0, -1.0, 0.0, 0.3, 0.1},
}

local function run(make)
   local p = T.fromtable(p0):requiresGrad(true)
   local opt = make({p})
   for _, g in ipairs(grads) do
      p.grad = T.fromtable(g)
      opt:step()
   end
   return p:totable(), p
end

describe('optim.SGD', function()
   it('matches the PyTorch SGD equations with momentum, dampening and weight decay', function()
      local lr, mom, damp, wd = 0.1, 0.9, 0.1, 0.01
      local got = run(function(ps) return snn.optim.SGD(ps, {lr = lr, momentum = mom, dampening = damp, weightDecay = wd}) end)
      local p, buf = {}, {}
      for i = 1, #p0 do p[i] = p0[i] end
      for k, g in ipairs(grads) do
         for i = 1, #p do
            local d = g[i] + wd * p[i]
            buf[i] = k == 1 and d or mom * buf[i] + (1 - damp) * d
            p[i] = p[i] - lr * buf[i]
         end
      end
      H.assertClose(got, p, 1e-5, 1e-6)
   end)

   it('matches Nesterov momentum and plain SGD', function()
      local lr, mom = 0.05, 0.8
      local got = run(function(ps) return snn.optim.SGD(ps, {lr = lr, momentum = mom, nesterov = true}) end)
      local p, buf = {}, {}
      for i = 1, #p0 do p[i] = p0[i] end
      for k, g in ipairs(grads) do
         for i = 1, #p do
            buf[i] = k == 1 and g[i] or mom * buf[i] + g[i]
            p[i] = p[i] - lr * (g[i] + mom * buf[i])
         end
      end
      H.assertClose(got, p, 1e-5, 1e-6)
      local plain = run(function(ps) return snn.optim.SGD(ps, {lr = 0.5}) end)
      local q = {}
      for i = 1, #p0 do
         q[i] = p0[i]
         for _, g in ipairs(grads) do q[i] = q[i] - 0.5 * g[i] end
      end
      H.assertClose(plain, q, 1e-6, 1e-6)
   end)

   it('rejects invalid settings', function()
      local p = {T.zeros({2}):requiresGrad(true)}
      assert.has_error(function() snn.optim.SGD(p, {lr = -1}) end)
      assert.has_error(function() snn.optim.SGD(p, {nesterov = true}) end)
      assert.has_error(function() snn.optim.SGD(42) end)
      -- the same tensor twice would be stepped twice per step
      local ok, err = pcall(snn.optim.Adam, {p[1], T.zeros({3}):requiresGrad(true), p[1]})
      assert.truthy(not ok and err:find('Adam: parameter 3 is parameter 1 again', 1, true), err)
   end)
end)

-- reference Adam/Nadam (SPEC.md section 14), in doubles
local function adamRef(nesterov, lr, b1, b2, eps, wd, amsgrad)
   local p, m, v, vmax = {}, {}, {}, {}
   for i = 1, #p0 do p[i], m[i], v[i], vmax[i] = p0[i], 0, 0, 0 end
   for k, g0 in ipairs(grads) do
      for i = 1, #p do
         local g = g0[i] + wd * p[i]
         m[i] = b1 * m[i] + (1 - b1) * g
         v[i] = b2 * v[i] + (1 - b2) * g * g
         local den
         if amsgrad then
            vmax[i] = math.max(vmax[i], v[i])
            den = math.sqrt(vmax[i]) + eps
         else
            den = math.sqrt(v[i]) + eps
         end
         local step = lr * math.sqrt(1 - b2 ^ k) / (1 - b1 ^ k)
         local num = nesterov and (b1 * m[i] + (1 - b1) * g) or m[i]
         p[i] = p[i] - step * num / den
      end
   end
   return p
end

describe('optim.Adam and optim.Nadam', function()
   it('Adam follows the 2019 PyTorch equations, with and without amsgrad', function()
      for _, ams in ipairs({false, true}) do
         local got = run(function(ps)
            return snn.optim.Adam(ps, {lr = 0.01, betas = {0.9, 0.999}, eps = 1e-8, amsgrad = ams})
         end)
         H.assertClose(got, adamRef(false, 0.01, 0.9, 0.999, 1e-8, 0, ams), 1e-5, 1e-7)
      end
   end)

   it('Nadam follows the reference optimizer, including weight decay', function()
      for _, ams in ipairs({false, true}) do
         local got = run(function(ps)
            return snn.optim.Nadam(ps, {lr = 0.01, betas = {0.8, 0.99}, eps = 1e-6, weightDecay = 0.1, amsgrad = ams})
         end)
         H.assertClose(got, adamRef(true, 0.01, 0.8, 0.99, 1e-6, 0.1, ams), 1e-5, 1e-7)
      end
   end)

   it('Nadam writes the weight-decayed gradient back, as the reference does', function()
      local p = T.fromtable({1, 2}):requiresGrad(true)
      p.grad = T.fromtable({0.5, 0.5})
      snn.optim.Nadam({p}, {weightDecay = 0.1}):step()
      H.assertClose(p.grad, {0.6, 0.7}, 1e-6)
   end)

   -- the reference forms 1 - beta in Python doubles (1 - 0.999 = 0.001); the
   -- complement of float32(0.999) would be 1.3e-5 too small, beyond rounding
   it('weights the moments by 1 - beta formed in double, as the reference', function()
      local g = {0.25, -3.0, 1e-3}
      for _, make in ipairs({snn.optim.Adam, snn.optim.Nadam}) do
         local p = T.zeros({3}):requiresGrad(true)
         p.grad = T.fromtable(g)
         local opt = make({p}, {lr = 0.01, betas = {0.9, 0.999}, eps = 1e-8})
         opt:step()
         local st = opt.state[1]
         local v, m, want = {}, {}, {}
         local nesterov = make == snn.optim.Nadam
         for i, gi in ipairs(g) do
            m[i] = (1 - 0.9) * gi
            v[i] = (1 - 0.999) * gi * gi
            local num = nesterov and (0.9 * m[i] + (1 - 0.9) * gi) or m[i]
            want[i] = -0.01 * math.sqrt(1 - 0.999) / (1 - 0.9) * num / (math.sqrt(v[i]) + 1e-8)
         end
         H.assertClose(st.m, m, 1e-6, 0)
         H.assertClose(st.v, v, 1e-6, 0)
         H.assertClose(p, want, 1e-6, 0)
      end
   end)

   it('default to lr 1e-3, betas {0.9, 0.999} and eps 1e-8: the steps of those values given explicitly', function()
      -- two steps, so that beta1 reaches Adam's update and not only its state; gradients near 1e-8, so that
      -- eps weighs in the denominator sqrt(v) + eps
      local steps = {{0.25, -3.0, 1e-3, 1e-8, -2e-8}, {-0.5, 1.0, 2e-3, 3e-8, 1e-8}}
      local function twoSteps(make, opts)
         local p = T.zeros({5}):requiresGrad(true)
         local opt = make({p}, opts)
         for _, g in ipairs(steps) do
            p.grad = T.fromtable(g)
            opt:step()
         end
         return {p = p:totable(), m = opt.state[1].m:totable(), v = opt.state[1].v:totable()}
      end
      for _, case in ipairs({{'Adam', snn.optim.Adam}, {'Nadam', snn.optim.Nadam}}) do
         local name, make = case[1], case[2]
         local explicit = twoSteps(make, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8})
         assert.are.same(explicit, twoSteps(make, nil), name)
         assert.are.same(explicit, twoSteps(make, {}), name)
      end
   end)

   -- the CPU updates a large parameter in vector lanes and chunks of 8192 across threads, and a small one
   -- through the loops' scalar tails: every element must get the bits it gets alone
   it('update a large parameter element for element as a small one (lanes, chunks, tails)', function()
      local n = 3 * 8192 + 11
      local function tiled(list)
         local t = {}
         for i = 1, n do t[i] = list[(i - 1) % #list + 1] end
         return T.fromtable(t)
      end
      local cases = {
         {'Adam', snn.optim.Adam, {lr = 0.01, amsgrad = true}},
         {'Adam', snn.optim.Adam, {lr = 0.01, weightDecay = 0.1}},
         {'Nadam', snn.optim.Nadam, {lr = 0.01, betas = {0.8, 0.99}, eps = 1e-6, weightDecay = 0.1, amsgrad = true}},
         {'Nadam', snn.optim.Nadam, {lr = 0.01}},
         {'SGD', snn.optim.SGD, {lr = 0.1, momentum = 0.9, nesterov = true, weightDecay = 0.01}},
      }
      for _, case in ipairs(cases) do
         local name, make, opts = case[1], case[2], case[3]
         local small = T.fromtable(p0):requiresGrad(true)
         local big = tiled(p0):requiresGrad(true)
         local optSmall, optBig = make({small}, opts), make({big}, opts)
         local gradBig
         for _, g in ipairs(grads) do
            small.grad, gradBig = T.fromtable(g), tiled(g)
            big.grad = gradBig
            optSmall:step()
            optBig:step()
         end
         local want, got = small:totable(), big:totable()
         local wantGrad, gotGrad = small.grad:totable(), gradBig:totable()
         local bad = 0
         for i = 1, n do
            local k = (i - 1) % #p0 + 1
            if got[i] ~= want[k] or gotGrad[i] ~= wantGrad[k] then bad = bad + 1 end
         end
         assert.are.equal(0, bad, name .. ': elements that differ from the small run')
      end
   end)

   it('differs between Adam and Nadam (the numerator changes)', function()
      local a = run(function(ps) return snn.optim.Adam(ps, {lr = 0.01}) end)
      local n = run(function(ps) return snn.optim.Nadam(ps, {lr = 0.01}) end)
      assert.is_true(H.relErr(a, n) > 1e-4)
   end)

   it('skips parameters without gradients and rejects bad settings', function()
      local p = T.fromtable({1, 2}):requiresGrad(true)
      snn.optim.Adam({p}):step()
      assert.are.same({1, 2}, p:totable())
      assert.has_error(function() snn.optim.Nadam({p}, {lr = -0.1}) end)
      assert.has_error(function() snn.optim.Nadam({p}, {betas = {1.0, 0.9}}) end)
      assert.has_error(function() snn.optim.Adam({p}, {eps = -1}) end)
   end)

   it('refuses options it does not know, naming the camelCase one a PyTorch spelling meant', function()
      local p = T.fromtable({1, 2}):requiresGrad(true)
      local err = H.errorOf(function() snn.optim.Adam({p}, {lr = 0.01, weight_decay = 0.1}) end)
      assert.is_truthy(err:find("Adam: unknown option 'weight_decay' (did you mean 'weightDecay'?)", 1, true), err)
      assert.is_truthy(err:find('options are amsgrad, betas, eps, lr, weightDecay', 1, true), err)
      err = H.errorOf(function() snn.optim.SGD({p}, {lr = 0.1, betas = {0.9, 0.99}}) end)
      assert.is_truthy(err:find("SGD: unknown option 'betas'", 1, true), err)
      -- a flag given as a number was read as false
      err = H.errorOf(function() snn.optim.Nadam({p}, {amsgrad = 1}) end)
      assert.is_truthy(err:find('Nadam: amsgrad must be true or false, got 1', 1, true), err)
      err = H.errorOf(function() snn.optim.SGD({p}, {momentum = 0.9, nesterov = 'yes'}) end)
      assert.is_truthy(err:find('SGD: nesterov must be true or false', 1, true), err)
      -- the known ones still work
      snn.optim.Nadam({p}, {lr = 0.1, betas = {0.9, 0.99}, eps = 1e-8, weightDecay = 0, amsgrad = false})
      snn.optim.SGD({p}, {lr = 0.1, momentum = 0.9, dampening = 0, weightDecay = 0, nesterov = true})
   end)
end)

describe('optimizer steps check each gradient before it reaches C', function()
   local errorOf = H.errorOf

   it('names the optimizer and the parameter for a grad that is not a tensor of its shape', function()
      local makers = {
         SGD = function(ps) return snn.optim.SGD(ps, {lr = 0.1, momentum = 0.9}) end,
         Adam = function(ps) return snn.optim.Adam(ps) end,
         Nadam = function(ps) return snn.optim.Nadam(ps, {amsgrad = true}) end,
      }
      for name, make in pairs(makers) do
         for _, bad in ipairs({'x', {}, 5, T.ones({5}), T.ones({3, 1})}) do
            local q = T.fromtable({7, 8}):requiresGrad(true)
            q.grad = T.ones({2})
            local p = T.ones({3}):requiresGrad(true)
            p.grad = bad
            local opt = make({q, p})
            local err = errorOf(function() opt:step() end)
            assert(err:find(name .. ':step: parameter 2 [3]', 1, true), err)
            assert(err:find('expected nil or a tensor of the same shape', 1, true), err)
            assert.are.same({1, 1, 1}, p:totable())
         end
      end
   end)

   it('refuses a non-contiguous parameter, a replaced parameter and a non-function closure', function()
      local p = T.ones({3, 2}):t()
      p:requiresGrad(true)
      p.grad = T.ones({2, 3})
      local err = errorOf(function() snn.optim.Adam({p}):step() end)
      assert(err:find('Adam:step: parameter 1 [2, 3] or its grad is not contiguous', 1, true), err)
      local list = {T.ones({3}):requiresGrad(true)}
      list[1].grad = T.ones({3})
      local opt = snn.optim.SGD(list, {momentum = 0.5})
      opt:step()
      list[1] = T.ones({5}):requiresGrad(true)
      list[1].grad = T.ones({5})
      err = errorOf(function() opt:step() end)
      assert(err:find('SGD:step: parameter 1 is now [5], its optimizer state is [3]', 1, true), err)
      err = errorOf(function() opt:step(5) end)
      assert(err:find('SGD:step: expected a closure function', 1, true), err)
   end)

   it('rejects option tables of the wrong type, infinite settings and lists with holes', function()
      local p = T.ones({3}):requiresGrad(true)
      assert(errorOf(function() snn.optim.SGD({p}, 'x') end):find('SGD: expected an options table', 1, true))
      assert(errorOf(function() snn.optim.Adam({p}, {lr = 1 / 0}) end):find('Adam: invalid lr inf', 1, true))
      assert(errorOf(function() snn.optim.Adam({p, nil, p}) end):find('without holes', 1, true))
   end)
end)
