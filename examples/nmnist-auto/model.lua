--[[
The data of the auto N-MNIST example, shared by train.lua and eval.lua: the
reference's nmnistDataset (each sample of an N-MNIST list as its events and
label) wrapped by snn.auto.dataset, which bins the events into the input of
the network built from network.yaml.
]]
local snn = require 'slayer'

local M = {}

-- the samples of a list file as (events, label): the list is parsed by
-- snn.data.SpikeFiles, the events read from each sample's file
local Events = snn.class('NMNISTEvents')
M.Events = Events

function Events:__init(dir, list, limit)
   self.files = snn.data.SpikeFiles{root = dir, list = list, classes = 10, limit = limit}
end

function Events:size() return self.files:size() end

function Events:get(i)
   local path, label = self.files:path(i)
   return snn.io.read2Dspikes(path), label -- labels 1..10 of the network's 11 outputs
end

--- The samples of an N-MNIST list file in dir (the first `limit` when > 0),
-- binned for net (an snn.auto.loihi.Network); a clear error when the data
-- is absent.
function M.dataset(dir, list, limit, net)
   if not snn.utils.exists(dir .. '/' .. list) then
      io.stderr:write('nmnist-auto: ' .. dir .. '/' .. list .. ' not found.\nPass --data <folder>: '
         .. '../shared/data/nmnist-small beside the checkout, or any N-MNIST folder with <index>.bs2 files and the '
         .. 'lists train1K.txt and test100.txt (the reference\'s NMNISTsmall).\n')
      os.exit(1)
   end
   return snn.auto.dataset(Events(dir, list, limit), net)
end

return M
