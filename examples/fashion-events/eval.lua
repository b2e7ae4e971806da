-- Reload a checkpoint of examples/fashion-events and measure its test accuracy.
--   luajit examples/fashion-events/eval.lua out/fashion-events/checkpoint.t7s [--test 1000 | --full]
local here = arg[0]:match('^(.*)/[^/]*$') or '.'
package.path = here .. '/../../lua/?.lua;' .. here .. '/../../lua/?/init.lua;' .. package.path
local snn = require 'slayer'
local utils = snn.utils

local opt = utils.options(arg, {
   {'checkpoint', 'written by train.lua, e.g. out/fashion-events/checkpoint.t7s'},
   threads = {2, 'CPU threads', integer = true, min = 1}, batch = {12, 'batch size', integer = true, min = 1},
   test = {1000, 'test images (0: all)', integer = true, min = 0},
   full = {false, 'all 10000 test images'}, out = {'out/fashion-events', 'folder of the event cache'},
   data = {'/usr/share/datasets/fashion-mnist', 'folder with the Fashion-MNIST IDX files'},
}, 'luajit examples/fashion-events/eval.lua <checkpoint> [options]')
local checkpoint = opt.checkpoint
if not utils.exists(checkpoint) then
   io.stderr:write('fashion-events eval: no checkpoint at ' .. checkpoint .. ' (give the one train.lua wrote)\n')
   os.exit(1)
end
if opt.full then opt.test = 0 end
snn.setNumThreads(opt.threads)
local model = dofile(here .. '/model.lua')
local netParams = snn.params(here .. '/network.yaml')
local net = model.Network(netParams):load(checkpoint):evaluate()
local testSet = model.dataset(opt.data, 't10k', opt.test, opt.out .. '/cache', netParams)
local acc, _, correct, total = utils.evaluate(net, snn.data.Loader(testSet, {batchSize = opt.batch, workers = 2}))
print(string.format('test accuracy %.4f (%d / %d)', acc, correct, total))
print('RESULT ' .. utils.json({example = 'fashion-events', testAccuracy = acc, samples = total}))
