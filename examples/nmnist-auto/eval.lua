--[[
Evaluate a checkpoint of the auto Loihi N-MNIST MLP on the test list with
the assistant's testing pass: reproduces the test accuracy and loss
train.lua reported for it.

    luajit examples/nmnist-auto/eval.lua out/nmnist-auto/checkpoint.t7s [--data ...] [--test 0]

Ends with one line `RESULT {json}` (testAccuracy, testLoss, samples).
]]
local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local root = here .. '/../..'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. here .. '/?.lua;' .. package.path

local snn = require 'slayer'
local model = require 'model'

local opt = snn.utils.options(arg, {
   {'checkpoint', 'written by train.lua, e.g. out/nmnist-auto/checkpoint.t7s'},
   threads = {2, 'CPU threads', integer = true, min = 1},
   batch = {12, 'batch size', integer = true, min = 1},
   data = {root .. '/../shared/data/nmnist-small', 'N-MNIST folder with test100.txt and <index>.bs2'},
   test = {0, 'use only this many test samples (0: all)', integer = true, min = 0},
}, 'luajit examples/nmnist-auto/eval.lua <checkpoint> [options]')
local checkpoint = opt.checkpoint
if not snn.utils.exists(checkpoint) then
   io.stderr:write('nmnist-auto eval: no checkpoint at ' .. checkpoint .. ' (give the one train.lua wrote)\n')
   os.exit(1)
end

snn.setNumThreads(opt.threads)
local netParams = snn.params(here .. '/network.yaml')
local net = snn.auto.loihi.Network(netParams, {verbose = false}):load(checkpoint)
local lossFn = snn.loss(netParams, snn.loihi)
local testingSet = model.dataset(opt.data, 'test100.txt', opt.test, net)

local stats = snn.stats()
local boss = snn.auto.assistant(net, nil, snn.data.Loader(testingSet, {batchSize = opt.batch}),
   function(o, t) return lossFn:numSpikes(o, t) end, nil, {stats = stats})
boss:test(0, {printLog = false})
local t = stats.testing
local acc, loss = t.correctSamples / t.numSamples, t:loss()
print(string.format('test accuracy %.4f (%d / %d), loss %.6g', acc, t.correctSamples, t.numSamples, loss))
print('RESULT ' .. snn.utils.json{example = 'nmnist-auto', testAccuracy = acc, testLoss = loss, samples = t.numSamples,
   checkpoint = checkpoint})
