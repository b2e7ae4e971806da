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

--- The N-MNIST sample lists of dir as datasets; a clear error when absent.
function M.datasets(dir, trainList, testList, netParams)
   for _, list in ipairs({trainList, testList}) do
      local path = list:sub(1, 1) == '/' and list or dir .. '/' .. list
      if not snn.utils.exists(path) then
         io.stderr:write('nmnist-loihi: ' .. path .. ' not found.\nPass --data <folder>: ../shared/data/nmnist-small '
            .. 'beside the checkout, or any N-MNIST folder with <index>.bs2 files and the lists train1K.txt and '
            .. 'test100.txt (the reference\'s NMNISTsmall).\n')
         os.exit(1)
      end
   end
   local function set(list)
      return snn.data.SpikeFiles{root = dir, list = list, shape = {2, 34, 34},
         tSample = netParams.simulation.tSample, Ts = netParams.simulation.Ts, classes = 10}
   end
   return set(trainList), set(testList)
end

return M
