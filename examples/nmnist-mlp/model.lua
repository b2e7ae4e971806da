-- The network of the NMNIST MLP example, shared by train.lua and eval.lua.
local snn = require 'slayer'

local Network = snn.class('NMNISTMLP', snn.Module)

function Network:__init(netParams)
   snn.Module.__init(self)
   self.slayer = snn.layer(netParams.neuron, netParams.simulation)
   self.fc1 = self.slayer:dense({34, 34, 2}, 512)
   self.fc2 = self.slayer:dense(512, 10)
end

-- psp after dense: the same linear map as dense(psp(x)), cheaper on spikes
function Network:forward(spikeInput)
   local sl = self.slayer
   local spikeLayer1 = sl:spike(sl:psp(self.fc1(spikeInput)))
   return sl:spike(sl:psp(self.fc2(spikeLayer1)))
end

return Network
