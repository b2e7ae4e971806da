--[[
snn.predict -- the reference's spikeClassifier.

getClass(spike): per sample, the index of the output neuron with the most
spikes over the whole time, the (C, H, W) neurons flattened in row-major
order; 1-based (Lua convention; the reference is 0-based).  Ties go to the
lowest index and a silent output predicts class 1, as the reference's first
maximum does.  Returns a 1-D tensor of N class indices.
]]
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'

local M = {}

function M.getClass(spike)
   if not T.isTensor(spike) or spike:dim() ~= 5 then
      error('getClass: expected a 5-D (N, C, H, W, T) spike tensor, got '
         .. (T.isTensor(spike) and T.shapeStr(spike) or type(spike)), 2)
   end
   return A.noGrad(function()
      local counts = spike:sum(5):reshape({spike:size(1), -1})
      return counts:argmax(2):reshape({spike:size(1)})
   end)
end

return M
