-- Reload a checkpoint of examples/nmnist-mlp and measure its test accuracy.
--   luajit examples/nmnist-mlp/eval.lua out/nmnist-mlp/checkpoint.t7s [--data <folder>] [--threads 2]
local here = arg[0]:match('^(.*)/[^/]*$') or '.'
package.path = here .. '/../../lua/?.lua;' .. here .. '/../../lua/?/init.lua;' .. package.path
local snn = require 'slayer'
local utils = snn.utils

local opt = utils.options(arg, {
   {'checkpoint', 'written by train.lua, e.g. out/nmnist-mlp/checkpoint.t7s'},
   threads = {2, 'CPU threads', integer = true, min = 1}, batch = {12, 'batch size', integer = true, min = 1},
   test = {0, 'use only this many test samples (0: all)', integer = true, min = 0},
   data = {here .. '/../../../shared/data/nmnist-small', 'N-MNIST-style folder with test100.txt'},
}, 'luajit examples/nmnist-mlp/eval.lua <checkpoint> [options]')
local checkpoint = opt.checkpoint
if not utils.exists(checkpoint) then
   io.stderr:write('nmnist-mlp eval: no checkpoint at ' .. checkpoint .. ' (give the one train.lua wrote)\n')
   os.exit(1)
end
snn.setNumThreads(opt.threads)

local netParams = snn.params(here .. '/network.yaml')
local net = dofile(here .. '/model.lua')(netParams):load(checkpoint):evaluate()
local err = snn.loss(netParams)
local testSet = snn.data.SpikeFiles{root = opt.data, list = 'test100.txt', shape = {2, 34, 34},
   tSample = netParams.simulation.tSample, Ts = netParams.simulation.Ts, classes = 10, limit = opt.test}

local loader = snn.data.Loader(testSet, {batchSize = opt.batch})
local acc, loss, correct, total = utils.evaluate(net, loader, function(o, t) return err:numSpikes(o, t) end)
print(string.format('test accuracy %.4f (%d / %d), loss %.6g', acc, correct, total, loss))
print('RESULT ' .. utils.json({example = 'nmnist-mlp', testAccuracy = acc, testLoss = loss, samples = total}))
