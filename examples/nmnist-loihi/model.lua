--[[
The network and the data of the Loihi N-MNIST example, shared by train.lua
and eval.lua: 2312 -> 512 -> 10 LOIHI neurons, every layer
delayShift(spikeLoihi(dense(x)), 1) (Loihi's minimum one-tick axonal delay).
]]
local snn = require 'slayer'

local M = {}

local Network = snn.class('NMNISTLoihi', snn.Module)
M.Network = Network

function Network:__init(netParams)
   snn.Module.__init(self)
   self.slayer = snn.loihi(netParams.neuron, netParams.simulation)
   self.fc1 = self.slayer:dense(34 * 34 * 2, 512)   -- weightScale 100, quantised in steps of 2
   self.fc2 = self.slayer:dense(512, 10)
end

function Network:forward(input)
   local sl = self.slayer
   local s = input:reshape({input:size(1), -1, 1, 1, input:size(5)}) -- neurons into channels
   s = sl:delayShift(sl:spikeLoihi(self.fc1(s)), 1)
   return sl:delayShift(sl:spikeLoihi(self.fc2(s)), 1)
end

--- The samples of an N-MNIST list file in dir (the first `limit` when > 0);
-- a clear error when the data is absent.
function M.dataset(dir, list, limit, netParams)
   if not snn.utils.exists(dir .. '/' .. list) then
      io.stderr:write('nmnist-loihi: ' .. dir .. '/' .. list .. ' not found.\nPass --data <folder>: '
         .. '../shared/data/nmnist-small beside the checkout, or any N-MNIST folder with <index>.bs2 files and the '
         .. 'lists train1K.txt and test100.txt (the reference\'s NMNISTsmall).\n')
      os.exit(1)
   end
   return snn.data.SpikeFiles{root = dir, list = list, shape = {2, 34, 34}, tSample = netParams.simulation.tSample,
      Ts = netParams.simulation.Ts, classes = 10, limit = limit}
end

return M
