-- Network and datasets of the Fashion-MNIST events example (train.lua, eval.lua).
local snn = require 'slayer'
local M = {}

M.classes = {'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'}

local Network = snn.class('FashionEventsNet', snn.Module)
M.Network = Network

function Network:__init(netParams)
   snn.Module.__init(self)
   self.slayer = snn.layer(netParams.neuron, netParams.simulation)
   self.fc1 = self.slayer:dense({34, 34, 2}, 512)
   self.fc2 = self.slayer:dense(512, 10)
end

function Network:forward(spikeInput)
   local sl = self.slayer
   local s1 = sl:spike(sl:psp(self.fc1(spikeInput)))
   return sl:spike(sl:psp(self.fc2(s1)))
end

--- The first n images of a Fashion-MNIST split as a cached event dataset.
-- split: 'train' or 't10k'; dir: folder of the IDX files.
function M.dataset(dir, split, n, cache, netParams)
   local images = snn.io.readIdx(dir .. '/' .. split .. '-images-idx3-ubyte.gz')
   local labels = snn.io.readIdx(dir .. '/' .. split .. '-labels-idx1-ubyte.gz')
   if n > 0 and n < images:size(1) then
      images, labels = images:narrow(1, 1, n):contiguous(), labels:narrow(1, 1, n):contiguous()
   end
   return snn.data.SaccadeImages{images = images, labels = labels, cache = cache .. '/' .. split,
      tSample = netParams.simulation.tSample, Ts = netParams.simulation.Ts, classes = 10,
      saccade = {seed = split == 'train' and 0 or 1000000}}
end

return M
