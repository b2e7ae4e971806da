-- Network and augmentation of the NMNIST CNN example (train.lua, eval.lua).
local snn = require 'slayer'
local M = {}

local Network = snn.class('NMNISTCNN', snn.Module)
M.Network = Network

function Network:__init(netParams, dropout)
   snn.Module.__init(self)
   local sl = snn.layer(netParams.neuron, netParams.simulation)
   self.slayer = sl
   self.conv1 = sl:conv(2, 16, 5, 1, 1)   -- 34 -> 32
   self.pool1 = sl:pool(2)                -- 32 -> 16
   self.conv2 = sl:conv(16, 32, 3, 1, 1)  -- 16 -> 16
   self.pool2 = sl:pool(2)                -- 16 -> 8
   self.conv3 = sl:conv(32, 64, 3, 1, 1)  -- 8 -> 8
   self.fc1 = sl:dense({8, 8, 64}, 10)
   self.drop = sl:dropout(dropout or 0)
end

-- The reference applies psp before each layer; psp commutes with these
-- per-time-bin linear maps, so psp after them is the same network (up to
-- float rounding) and lets every layer work on sparse spikes.
function Network:forward(x)
   local sl = self.slayer
   local function layer(op, s) return sl:spike(sl:psp(op(s))) end
   local s = layer(self.conv1, x)
   s = layer(self.pool1, s)
   s = layer(self.conv2, self.drop(s))
   s = layer(self.pool2, s)
   s = layer(self.conv3, self.drop(s))
   return layer(self.fc1, self.drop(s))
end

return M
