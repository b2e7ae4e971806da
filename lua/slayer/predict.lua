--[[
snn.predict -- the reference's spikeClassifier.

getClass(spike): per sample, the index of the output neuron with the most
spikes over the whole time, the (C, H, W) neurons flattened in row-major
order; 1-based (Lua convention; the reference is 0-based).  Ties go to the
lowest index and a silent output predicts class 1, as the reference's first
maximum does.  Returns a 1-D tensor of N class indices.
]]
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'

local M = {}

function M.getClass(spike)
   if not T.isTensor(spike) or spike:dim() ~= 5 then
      L.raise('getClass: expected a 5-D (N, C, H, W, T) spike tensor, got '
         .. (T.isTensor(spike) and T.shapeStr(spike) or type(spike)))
   end
   local N, neurons = spike:size(1), spike:size(2) * spike:size(3) * spike:size(4)
   if neurons == 0 then L.raise('getClass: no output neurons to choose from in ' .. T.shapeStr(spike)) end
   if N == 0 then return T.zeros({0}, spike.device) end
   return A.noGrad(function()
      local counts = spike:sum(5):reshape({N, neurons})
      return counts:argmax(2):reshape({N})
   end)
end

return M
