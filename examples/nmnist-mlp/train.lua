-- NMNIST MLP (the reference's example/02_NMNIST_MLP): 2312 -> 512 -> 10
-- spiking neurons trained with the numSpikes loss on N-MNIST events.
--   luajit examples/nmnist-mlp/train.lua [--epochs 90] [--data <N-MNIST folder>] [--help]
local here = arg[0]:match('^(.*)/[^/]*$') or '.'
package.path = here .. '/../../lua/?.lua;' .. here .. '/../../lua/?/init.lua;' .. here .. '/?.lua;' .. package.path
local snn = require 'slayer'
local utils = snn.utils

local opt = utils.options(arg, {
   epochs = {90, 'training epochs', integer = true, min = 1},
   batch = {12, 'batch size', integer = true, min = 1}, lr = {0.01, 'Adam learning rate', above = 0},
   seed = {1, 'random seed', integer = true, min = 0, max = 2 ^ 53},
   threads = {2, 'CPU threads', integer = true, min = 1},
   workers = {2, 'data loading threads', integer = true, min = 0, max = 1024},
   out = {'out/nmnist-mlp', 'folder for checkpoint, statistics and plots'},
   data = {here .. '/../../../shared/data/nmnist-small', 'N-MNIST-style folder with train1K.txt and test100.txt'},
   train = {0, 'use only this many training samples (0: all)', integer = true, min = 0},
   test = {0, 'use only this many test samples (0: all)', integer = true, min = 0},
}, 'luajit examples/nmnist-mlp/train.lua [options]')

if not utils.exists(opt.data .. '/train1K.txt') then
   io.stderr:write('nmnist-mlp: no N-MNIST data at ' .. opt.data .. ' (expected train1K.txt, test100.txt and <index>.bs2 '
      .. 'files, e.g. ../shared/data/nmnist-small of this project, or any N-MNIST folder with such lists); use --data\n')
   os.exit(1)
end
snn.manualSeed(opt.seed)
snn.setNumThreads(opt.threads)
utils.mkdir(opt.out)

local netParams = snn.params(here .. '/network.yaml')
local Network = dofile(here .. '/model.lua')
local net = Network(netParams)
local err = snn.loss(netParams)
local optimizer = snn.optim.Adam(net:parameters(), {lr = opt.lr, amsgrad = true})

local function dataset(list, limit)
   return snn.data.SpikeFiles{root = opt.data, list = list, shape = {2, 34, 34}, tSample = netParams.simulation.tSample,
      Ts = netParams.simulation.Ts, classes = 10, limit = limit}
end
local trainSet, testSet = dataset('train1K.txt', opt.train), dataset('test100.txt', opt.test)
local trainLoader = snn.data.Loader(trainSet, {batchSize = opt.batch, shuffle = true, seed = opt.seed, workers = opt.workers})
local testLoader = snn.data.Loader(testSet, {batchSize = opt.batch, workers = opt.workers})

local stats = snn.stats{epochSamples = {train = #trainSet, test = #testSet}}

local t0, best = utils.now(), 0
for epoch = 0, opt.epochs - 1 do
   local tSt = utils.now()
   net:train()
   local i = 0
   for input, target, labels in trainLoader:iter() do
      local output = net(input)
      local loss = err:numSpikes(output, target)
      optimizer:zeroGrad()
      loss:backward()
      optimizer:step()
      stats.training.correctSamples = stats.training.correctSamples + utils.correct(output, labels)
      stats.training.numSamples = stats.training.numSamples + #labels
      stats.training.lossSum = stats.training.lossSum + loss:item()
      i = i + 1
      if stats.tty and i % 10 == 0 then stats:print(epoch, i, utils.now() - tSt) end
   end
   net:evaluate()
   local _, _, nCorrect, n, lossSum = utils.evaluate(net, testLoader, function(o, t) return err:numSpikes(o, t) end)
   stats.testing.correctSamples, stats.testing.numSamples, stats.testing.lossSum = nCorrect, n, lossSum
   stats:print(epoch, nil, utils.now() - tSt)
   stats:update()
   if stats.testing.bestAccuracy or epoch == 0 then net:save(opt.out .. '/best.t7s') end
   best = math.max(best, stats.testing.accuracyLog[#stats.testing.accuracyLog] or 0)
end

net:save(opt.out .. '/checkpoint.t7s')
stats:save(opt.out .. '/')
local plots = stats:plot{path = opt.out .. '/', title = 'NMNIST MLP'}
snn.noGrad(function()
   for input in testLoader:iter() do
      snn.io.raster(net(input):select(1, 1), opt.out .. '/output-raster.png')
      break
   end
end)
utils.writeFile(opt.out .. '/options.json', utils.json(opt) .. '\n')
print('checkpoint: ' .. opt.out .. '/checkpoint.t7s; plots: ' .. table.concat(plots, ', '))
print('RESULT ' .. utils.json({
   example = 'nmnist-mlp', epochs = opt.epochs, seed = opt.seed, threads = opt.threads,
   trainAccuracy = stats.training.accuracyLog[opt.epochs] or 0, testAccuracy = stats.testing.accuracyLog[opt.epochs] or 0,
   bestTestAccuracy = best, trainLoss = stats.training.lossLog[opt.epochs], testLoss = stats.testing.lossLog[opt.epochs],
   seconds = utils.now() - t0, epochSeconds = (utils.now() - t0) / math.max(opt.epochs, 1),
}))
