--[[
Evaluate a checkpoint of the Loihi N-MNIST MLP on the test list: reproduces
the test accuracy and loss train.lua reported for it.

    luajit examples/nmnist-loihi/eval.lua out/nmnist-loihi/nmnistLoihi.net [--data ...] [--test test100.txt]

Ends with one line `RESULT {json}` (testAccuracy, testLoss, numSamples).
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
   data = {root .. '/../shared/data/nmnist-small', 'N-MNIST folder (<index>.bs2 and the sample lists)'},
   test = {'test100.txt', 'testing list, in --data or an absolute path'},
}, 'luajit examples/nmnist-loihi/eval.lua <checkpoint> [options]')
if not checkpoint or checkpoint:sub(1, 2) == '--' or not snn.utils.exists(checkpoint) then
   io.stderr:write('usage: luajit examples/nmnist-loihi/eval.lua <checkpoint> [--data dir] [--test list]\n'
      .. (checkpoint and ('no checkpoint at ' .. checkpoint .. '\n') or ''))
   os.exit(1)
end

snn.setNumThreads(opt.threads)
local netParams = snn.params(here .. '/network.yaml')
local _, testingSet = model.datasets(opt.data, opt.test, opt.test, netParams)
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
print('RESULT ' .. snn.utils.json{testAccuracy = correct / count, testLoss = lossSum / count, numSamples = count,
   checkpoint = checkpoint})
