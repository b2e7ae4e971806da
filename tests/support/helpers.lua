--[[
Test helpers: finite-difference gradient checks and tensor comparisons.

gradcheck(f, inputs, opts) compares the analytic gradient of
L = sum(f(inputs...) * R), R a fixed random projection, with central
differences (f evaluated in float32, eps relative to each input's scale),
for every element of every input that requires a gradient.
]]
local snn = require 'slayer'
local T = snn.tensor

local H = {}

local function values(t) return t:detach():contiguous():totable() end

function H.values(t) return values(t) end

--- Largest |a - b| / (|b| + atol) over elements.
function H.relErr(a, b, atol)
   atol = atol or 1e-6
   local va, vb = type(a) == 'table' and not T.isTensor(a) and a or values(a),
      type(b) == 'table' and not T.isTensor(b) and b or values(b)
   assert(#va == #vb, 'relErr: sizes differ (' .. #va .. ' vs ' .. #vb .. ')')
   local worst = 0
   for i = 1, #va do
      local e = math.abs(va[i] - vb[i]) / (math.abs(vb[i]) + atol)
      if e > worst or e ~= e then worst = e end
   end
   return worst
end

--- Assert two tensors (or a tensor and a table) agree within rtol/atol.
function H.assertClose(a, b, rtol, atol, what)
   rtol, atol = rtol or 1e-5, atol or 1e-6
   local va = T.isTensor(a) and values(a) or a
   local vb = T.isTensor(b) and values(b) or b
   assert(#va == #vb, (what or 'values') .. ': sizes differ (' .. #va .. ' vs ' .. #vb .. ')')
   for i = 1, #va do
      local d = math.abs(va[i] - vb[i])
      if not (d <= atol + rtol * math.abs(vb[i])) then
         error(string.format('%s: element %d differs: %.9g vs %.9g (|diff| %.3g)', what or 'values', i, va[i], vb[i], d), 2)
      end
   end
   return true
end

--- Finite-difference check of d sum(f(...) * R) / d input for every input
-- tensor that requires a gradient.  opts: eps (default 1e-2), rtol (2e-2),
-- atol (1e-3), maxElems (check at most this many elements per input).
function H.gradcheck(f, inputs, opts)
   opts = opts or {}
   local eps, rtol, atol = opts.eps or 1e-2, opts.rtol or 2e-2, opts.atol or 1e-3
   local out = f(unpack(inputs))
   local R = T.randn(out:shape())
   local loss = (out * R):sum()
   for _, x in ipairs(inputs) do
      if T.isTensor(x) and x:requiresGrad() then x.grad = nil end
   end
   loss:backward()
   local function evalLoss()
      return snn.noGrad(function() return (f(unpack(inputs)) * R):sum():item() end)
   end
   local worst = 0
   for k, x in ipairs(inputs) do
      if T.isTensor(x) and x:requiresGrad() then
         assert(x.grad, 'gradcheck: input ' .. k .. ' received no gradient')
         local g = values(x.grad)
         local d = x:data()
         local n = x:numel()
         local step = math.max(1, math.floor(n / (opts.maxElems or n)))
         for i = 0, n - 1, step do
            local orig = d[i]
            local h = eps * math.max(1, math.abs(orig))
            d[i] = orig + h
            local lp = evalLoss()
            d[i] = orig - h
            local lm = evalLoss()
            d[i] = orig
            local num = (lp - lm) / (2 * h)
            local ana = g[i + 1]
            local err = math.abs(num - ana)
            if err > atol + rtol * math.max(math.abs(num), math.abs(ana)) then
               error(string.format('gradcheck: input %d element %d: analytic %.6g, numeric %.6g', k, i + 1, ana, num), 2)
            end
            if err > worst then worst = err end
         end
      end
   end
   return true, worst
end

--- Resident memory in bytes, from /proc/self/statm.
function H.rss()
   local f = io.open('/proc/self/statm')
   local _, res = f:read('*n', '*n')
   f:close()
   return res * 4096
end

--- Path of the shared test data (../shared/data beside the checkout), or nil.
function H.dataDir()
   local candidates = {'../shared/data', '../../shared/data'}
   local env = os.getenv('SLAYER_DATA')
   if env and env ~= '' then table.insert(candidates, 1, env) end
   for _, c in ipairs(candidates) do
      local f = io.open(c .. '/nmnist-small/train1K.txt')
      if f then
         f:close()
         return c
      end
   end
   return nil
end

--- The message of the error f() raises (fails when it raises none).
function H.errorOf(f)
   local ok, err = pcall(f)
   assert(not ok, 'expected an error')
   return tostring(err)
end

--- The bytes of a file, or nil when it cannot be opened.
function H.readFile(path)
   local f = io.open(path, 'rb')
   if not f then return nil end
   local s = f:read('*a')
   f:close()
   return s
end

--- Run a Lua source in a child luajit with the package's path set up, as
-- `env luajit <script> 2>&1` (env: variable settings and wrappers such as
-- 'X=1 timeout 60', or ''); returns everything it printed.
function H.runLua(source, env)
   local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/tests/support/[^/]*$') or '.'
   local script = os.tmpname()
   local f = assert(io.open(script, 'w'))
   f:write(string.format('package.path = %q .. package.path\n', root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;'),
      source)
   f:close()
   local p = io.popen((env or '') .. ' luajit ' .. script .. ' 2>&1')
   local out = p:read('*a')
   p:close()
   os.remove(script)
   return out
end

return H
