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

local opt = snn.utils.options(arg, {
   {'checkpoint', 'written by train.lua, e.g. out/nmnist-loihi/checkpoint.t7s'},
   threads = {2, 'CPU threads', integer = true, min = 1},
   batch = {12, 'batch size', integer = true, min = 1},
   data = {root .. '/../shared/data/nmnist-small', 'N-MNIST folder with test100.txt and <index>.bs2'},
   test = {0, 'use only this many test samples (0: all)', integer = true, min = 0},
}, 'luajit examples/nmnist-loihi/eval.lua <checkpoint> [options]')
local checkpoint = opt.checkpoint
if not snn.utils.exists(checkpoint) then
   io.stderr:write('nmnist-loihi eval: no checkpoint at ' .. checkpoint .. ' (give the one train.lua wrote)\n')
   os.exit(1)
end

snn.setNumThreads(opt.threads)
local netParams = snn.params(here .. '/network.yaml')
local testingSet = model.dataset(opt.data, 'test100.txt', opt.test, netParams)
local net = model.Network(netParams):load(checkpoint):evaluate()
local lossFn = snn.loss(netParams, snn.loihi)

local loader = snn.data.Loader(testingSet, {batchSize = opt.batch})
local acc, loss, correct, count = snn.utils.evaluate(net, loader, function(o, t) return lossFn:numSpikes(o, t) end)
print(string.format('test accuracy %.4f (%d / %d), loss %.6g', acc, correct, count, loss))
print('RESULT ' .. snn.utils.json{example = 'nmnist-loihi', testAccuracy = acc, testLoss = loss, samples = count,
   checkpoint = checkpoint})
