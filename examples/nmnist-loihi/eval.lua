--[[
Evaluate a checkpoint of the Loihi N-MNIST MLP on the test list: reproduces
the test accuracy and loss train.lua reported for it.

    luajit examples/nmnist-loihi/eval.lua out/nmnist-loihi/checkpoint.t7s [--data ...] [--test 0]

Ends with one line `RESULT {json}` (testAccuracy, testLoss, samples).
]]
local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local root = here .. '/../..'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. here .. '/?.lua;' .. package.path

local snn = require 'slayer'
local model = require 'model'

local checkpoint = table.remove(arg, 1)
local opt = snn.utils.options(arg, {
   threads = {2, 'CPU threads'},
   batch = {12, 'batch size'},
   data = {root .. '/../shared/data/nmnist-small', 'N-MNIST folder with test100.txt and <index>.bs2'},
   test = {0, 'use only this many test samples (0: all)'},
}, 'luajit examples/nmnist-loihi/eval.lua <checkpoint> [options]')
if not checkpoint or checkpoint:sub(1, 2) == '--' or not snn.utils.exists(checkpoint) then
   io.stderr:write('usage: luajit examples/nmnist-loihi/eval.lua <checkpoint> [--data dir] [--test n]\n'
      .. (checkpoint and ('no checkpoint at ' .. checkpoint .. '\n') or ''))
   os.exit(1)
end

snn.setNumThreads(opt.threads)
local netParams = snn.params(here .. '/network.yaml')
local testingSet = model.dataset(opt.data, 'test100.txt', opt.test, netParams)
local net = model.Network(netParams):load(checkpoint):evaluate()
local lossFn = snn.loss(netParams, snn.loihi)

local correct, count, lossSum = 0, 0, 0
snn.noGrad(function()
   for input, target, labels in snn.data.Loader(testingSet, {batchSize = opt.batch}):iter() do
      local output = net(input)
      local pred = snn.predict.getClass(output):totable()
      for k, label in ipairs(labels) do if pred[k] == label then correct = correct + 1 end end
      count = count + #labels
      lossSum = lossSum + lossFn:numSpikes(output, target):item()
   end
end)
print(string.format('test accuracy %.4f (%d / %d), loss %.6g', correct / count, correct, count, lossSum / count))
print('RESULT ' .. snn.utils.json{example = 'nmnist-loihi', testAccuracy = correct / count, testLoss = lossSum / count,
   samples = count, checkpoint = checkpoint})
