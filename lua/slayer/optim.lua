--[[
slayer.optim -- SGD, Adam and the reference's Nadam.

    local opt = snn.optim.Nadam(net:parameters(), {lr = 0.01, amsgrad = true})
    opt:zeroGrad(); loss:backward(); opt:step()

Each optimizer keeps per-parameter state tensors on the parameter's device
(moved along when the parameter moves) and updates every parameter with one
fused C pass (csrc/ops/optim.c gives the equations).  Parameters whose
gradient is nil are skipped, as in PyTorch; any other gradient must be a
tensor of the parameter's shape on its device.
]]
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local nn = require 'slayer.nn'

local C = L.C
local M = {}

local function checkParams(name, params, opts)
   if nn.isModule(params) then
      L.raise(name .. ': expected a list of parameter tensors, got the module ' .. tostring(params.__typename)
         .. ': pass its :parameters()')
   end
   if type(params) ~= 'table' or T.isTensor(params) then
      L.raise(name .. ': expected a list of parameter tensors, got ' .. T.typeName(params))
   end
   if next(params) == nil then
      -- (as torch.optim: a network whose layers were not registered as its fields has none)
      L.raise(name .. ': the list of parameters is empty (does the network hold its layers as fields?)')
   end
   local n = 0
   for _ in pairs(params) do n = n + 1 end
   if n ~= #params then
      L.raise(name .. ': expected a list of parameter tensors without holes (' .. n .. ' entries, '
         .. #params .. ' in sequence)')
   end
   local seen = {}
   for i, p in ipairs(params) do
      if not T.isTensor(p) then L.raise(name .. ': parameter ' .. i .. ' is not a tensor') end
      if seen[p] then
         L.raise(name .. ': parameter ' .. i .. ' is parameter ' .. seen[p] .. ' again (it would be stepped twice)')
      end
      seen[p] = i
   end
   if opts ~= nil and type(opts) ~= 'table' then L.raise(name .. ': expected an options table, got ' .. type(opts)) end
end

-- opts may hold only the keys of `known` (a misspelt or snake_case key
-- would otherwise be ignored: weight_decay for weightDecay), and the flags
-- among them only booleans
local function checkKeys(name, opts, known, flags)
   if opts == nil then return end
   for k, v in pairs(opts) do
      if not known[k] then
         local hint = ''
         if type(k) == 'string' then
            local camel = k:gsub('_(%l)', string.upper)
            if known[camel] then hint = " (did you mean '" .. camel .. "'?)" end
         end
         local names = {}
         for n in pairs(known) do names[#names + 1] = n end
         table.sort(names)
         L.raise(name .. ": unknown option '" .. L.valueStr(k) .. "'" .. hint .. '; options are ' .. table.concat(names, ', '))
      end
      if flags[k] and type(v) ~= 'boolean' then
         L.raise(name .. ': ' .. k .. ' must be true or false, got ' .. L.valueStr(v))
      end
   end
end

local function number(name, opts, key, default, lo, hiExcl)
   local v = opts[key]
   if v == nil then return default end
   if type(v) ~= 'number' or v ~= v or v == math.huge or v == -math.huge or (lo and v < lo) or (hiExcl and v >= hiExcl) then
      L.raise(name .. ': invalid ' .. key .. ' ' .. L.valueStr(v)
         .. (lo and (' (expected >= ' .. lo .. (hiExcl and (' and < ' .. hiExcl) or '') .. ')') or ''))
   end
   return v
end

-- p.grad must be nil (the parameter is skipped) or a tensor of p's shape on
-- p's device; anything else would reach C as a NULL or mismatched buffer
local function checkGrad(name, i, p)
   if not T.isTensor(p) then
      L.raise(name .. ':step: parameter ' .. i .. ' is not a tensor (got ' .. type(p) .. ')')
   end
   local g = p.grad
   if g == nil then return nil end
   if not T.isTensor(g) or g.device ~= p.device or not T._sameShape(g, p) then
      L.raise(name .. ':step: parameter ' .. i .. ' ' .. T.shapeStr(p) .. ' on ' .. p.device .. ' has a grad of '
         .. (T.isTensor(g) and (T.shapeStr(g) .. ' on ' .. g.device) or type(g))
         .. '; expected nil or a tensor of the same shape on the same device')
   end
   if not p:isContiguous() or not g:isContiguous() then
      L.raise(name .. ':step: parameter ' .. i .. ' ' .. T.shapeStr(p) .. ' or its grad is not contiguous')
   end
   return g
end

-- a state tensor that follows its parameter's device and shape
local function stateLike(name, i, p, t)
   if t == nil then return T.zeros(p:shape(), p.device) end
   if not T._sameShape(t, p) then
      L.raise(name .. ':step: parameter ' .. i .. ' is now ' .. T.shapeStr(p) .. ', its optimizer state is '
         .. T.shapeStr(t) .. ' (was the parameter replaced?)')
   end
   if t.device ~= p.device then t:moveTo_(p.device) end
   return t
end

local Optimizer = nn.class('Optimizer')
M.Optimizer = Optimizer

-- print(opt) in the REPL: Adam(lr = 0.01, betas = {0.9, 0.999}, ...) over 4 tensors
function Optimizer:__tostring()
   local keys, parts = {}, {}
   for k, v in pairs(self) do
      if type(k) == 'string' and k ~= 'params' and k ~= 'state' and k:sub(1, 1) ~= '_'
         and (type(v) == 'number' or type(v) == 'boolean' or type(v) == 'table' and not T.isTensor(v) and type(v[1]) == 'number') then
         keys[#keys + 1] = k
      end
   end
   table.sort(keys, function(a, b) return a == 'lr' or (b ~= 'lr' and a < b) end)
   for _, k in ipairs(keys) do
      local v = self[k]
      if type(v) == 'table' then
         local items = {}
         for i, x in ipairs(v) do items[i] = string.format('%g', x) end
         v = '{' .. table.concat(items, ', ') .. '}'
      elseif type(v) == 'number' then
         v = string.format('%g', v)
      end
      parts[#parts + 1] = k .. ' = ' .. tostring(v)
   end
   local n = 0
   for _, p in ipairs(self.params or {}) do n = n + p:numel() end
   local count = #(self.params or {})
   return string.format('%s(%s) over %d tensor%s (%d values)', self.__typename, table.concat(parts, ', '), count,
      count == 1 and '' or 's', n)
end

function Optimizer:zeroGrad()
   for _, p in ipairs(self.params) do p:zeroGrad() end
end

--- Run closure (if any) and return its value, as PyTorch's step(closure).
function Optimizer:_closure(closure)
   if closure == nil then return nil end
   if type(closure) ~= 'function' then
      L.raise(tostring(self.__typename) .. ':step: expected a closure function or nothing, got ' .. type(closure))
   end
   return closure()
end

---------------------------------------------------------------------------

local SGD = nn.class('SGD', Optimizer)
M.SGD = SGD

function SGD:__init(params, opts)
   checkParams('SGD', params, opts)
   checkKeys('SGD', opts, {lr = true, momentum = true, dampening = true, weightDecay = true, nesterov = true},
      {nesterov = true})
   opts = opts or {}
   self.params = params
   self.lr = number('SGD', opts, 'lr', 1e-3, 0)
   self.momentum = number('SGD', opts, 'momentum', 0, 0)
   self.dampening = number('SGD', opts, 'dampening', 0)
   self.weightDecay = number('SGD', opts, 'weightDecay', 0, 0)
   self.nesterov = opts.nesterov == true
   if self.nesterov and (self.momentum <= 0 or self.dampening ~= 0) then
      L.raise('SGD: nesterov needs momentum > 0 and dampening 0')
   end
   self.state = {}
end

function SGD:step(closure)
   local ret = self:_closure(closure)
   for i, p in ipairs(self.params) do
      local g = checkGrad('SGD', i, p)
      if g then
         local st = self.state[i] or {}
         self.state[i] = st
         local first = 0
         local buf = nil
         if self.momentum ~= 0 then
            if st.buf == nil then first = 1 end
            st.buf = stateLike('SGD', i, p, st.buf)
            buf = st.buf._c
         end
         if C.sl_sgd_step(p._c, g._c, buf, self.lr, self.momentum, self.dampening, self.weightDecay,
               self.nesterov and 1 or 0, first) ~= 0 then
            L.raise('SGD:step: ' .. L.lastError())
         end
         C.sl_tensor_bump_version(p._c)
      end
   end
   return ret
end

---------------------------------------------------------------------------

local function adamInit(self, name, params, opts)
   checkParams(name, params, opts)
   checkKeys(name, opts, {lr = true, betas = true, eps = true, weightDecay = true, amsgrad = true}, {amsgrad = true})
   opts = opts or {}
   self.params = params
   self.lr = number(name, opts, 'lr', 1e-3, 0)
   local betas = opts.betas or {0.9, 0.999}
   if type(betas) ~= 'table' or type(betas[1]) ~= 'number' or type(betas[2]) ~= 'number'
      or betas[1] < 0 or betas[1] >= 1 or betas[2] < 0 or betas[2] >= 1 then
      L.raise(name .. ': betas must be two numbers in [0, 1), got ' .. L.valueStr(betas[1]) .. ', ' .. L.valueStr(betas[2]))
   end
   self.betas = {betas[1], betas[2]}
   self.eps = number(name, opts, 'eps', 1e-8, 0)
   self.weightDecay = number(name, opts, 'weightDecay', 0, 0)
   self.amsgrad = opts.amsgrad == true
   self.state = {}
end

local function adamStep(self, mode, closure)
   local ret = self:_closure(closure)
   local b1, b2 = self.betas[1], self.betas[2]
   local name = mode == 1 and 'Nadam' or 'Adam'
   for i, p in ipairs(self.params) do
      local g = checkGrad(name, i, p)
      if g then
         local st = self.state[i]
         if not st then
            st = {step = 0}
            self.state[i] = st
         end
         st.m = stateLike(name, i, p, st.m)
         st.v = stateLike(name, i, p, st.v)
         if self.amsgrad then st.vmax = stateLike(name, i, p, st.vmax) end
         st.step = st.step + 1
         local bias1 = 1 - b1 ^ st.step
         local bias2 = 1 - b2 ^ st.step
         if C.sl_adam_step(mode, p._c, g._c, st.m._c, st.v._c, st.vmax and st.vmax._c or nil, self.lr, b1, b2,
               self.eps, self.weightDecay, self.amsgrad and 1 or 0, bias1, bias2) ~= 0 then
            L.raise(name .. ':step: ' .. L.lastError())
         end
         C.sl_tensor_bump_version(p._c)
      end
   end
   return ret
end

--- Adam as PyTorch computed it when the reference was written (2019):
-- denom = sqrt(v) + eps, step = lr * sqrt(1 - b2^k) / (1 - b1^k).
local Adam = nn.class('Adam', Optimizer)
M.Adam = Adam
function Adam:__init(params, opts) adamInit(self, 'Adam', params, opts) end
function Adam:step(closure) return adamStep(self, 0, closure) end

--- The reference's Nadam (src/optimizer.py): Adam with the Nesterov
-- numerator b1*m + (1-b1)*g; weight decay is written into the gradient.
local Nadam = nn.class('Nadam', Optimizer)
M.Nadam = Nadam
function Nadam:__init(params, opts) adamInit(self, 'Nadam', params, opts) end
function Nadam:step(closure) return adamStep(self, 1, closure) end

return M
