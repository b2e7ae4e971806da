--[[
snn.quantize(weights, step) -- the reference's quantizeWeights.

Forward: round(w / step) * step, float32 division, round half to even
(step 2: -3 -> -4, -1 -> -0, 1 -> 0, 3 -> 4, 5 -> 4).  Backward: the
gradient passes through unchanged (straight-through); step gets none.
]]
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'

local C = L.C

local function quantize(weights, step)
   step = step or 1
   if not T.isTensor(weights) then L.raise('quantize: expected a weight tensor, got ' .. type(weights)) end
   -- a float32 step: w / step must not divide by a denormal or overflow
   if type(step) ~= 'number' or not (step >= 2 ^ -126 and step <= 2 ^ 127) then
      L.raise('quantize: expected a positive step within float32\'s normal range [2^-126, 2^127], got ' .. L.valueStr(step))
   end
   local q = T._rawScalar(C.SL_DIV, weights, step)
   q = T._rawUnary(C.SL_ROUND, q)
   q = T._rawScalar(C.SL_MUL, q, step)
   return A.record(q, {weights}, function(g) return g end, 1)
end

local M = {quantize = quantize}
-- quantizeWeights.apply(w, step) as the reference writes it, or M:apply(w, step)
function M.apply(a, b, c)
   if a == M then return quantize(b, c) end
   return quantize(a, b)
end

return setmetatable(M, {__call = function(_, w, step) return quantize(w, step) end})
