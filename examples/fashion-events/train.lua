-- The main job: Fashion-MNIST images become N-MNIST-style event streams (three
-- simulated saccades, cached on disk), and a spiking MLP learns to classify them.
--   luajit examples/fashion-events/train.lua [--epochs 8] [--train 6000 --test 1000 | --full] [--help]
local here = arg[0]:match('^(.*)/[^/]*$') or '.'
package.path = here .. '/../../lua/?.lua;' .. here .. '/../../lua/?/init.lua;' .. package.path
local snn = require 'slayer'
local utils = snn.utils

local opt = utils.options(arg, {
   epochs = {8, 'training epochs', integer = true, min = 1},
   batch = {12, 'batch size', integer = true, min = 1}, lr = {0.01, 'Adam learning rate', above = 0},
   seed = {1, 'random seed', integer = true, min = 0, max = 2 ^ 53},
   threads = {2, 'CPU threads', integer = true, min = 1},
   workers = {2, 'data loading threads', integer = true, min = 0, max = 1024},
   train = {6000, 'training images (the first ones of the training split; 0: all)', integer = true, min = 0},
   test = {1000, 'test images (the first ones of the test split; 0: all)', integer = true, min = 0},
   full = {false, 'use all 60000 / 10000 images'},
   out = {'out/fashion-events', 'folder for checkpoint, statistics, plots and the event cache'},
   data = {'/usr/share/datasets/fashion-mnist', 'folder with the Fashion-MNIST IDX files'},
}, 'luajit examples/fashion-events/train.lua [options]')
if opt.full then opt.train, opt.test = 0, 0 end
if not utils.exists(opt.data .. '/train-images-idx3-ubyte.gz') then
   io.stderr:write('fashion-events: no Fashion-MNIST at ' .. opt.data .. ' (Debian: apt-get install dataset-fashion-mnist, '
      .. 'or --data <folder with train-images-idx3-ubyte.gz, t10k-...>)\n')
   os.exit(1)
end
snn.manualSeed(opt.seed)
snn.setNumThreads(opt.threads)
utils.mkdir(opt.out)

local model = dofile(here .. '/model.lua')
local netParams = snn.params(here .. '/network.yaml')
local t0 = utils.now()
local trainSet = model.dataset(opt.data, 'train', opt.train, opt.out .. '/cache', netParams)
local testSet = model.dataset(opt.data, 't10k', opt.test, opt.out .. '/cache', netParams)
for _, ds in ipairs({trainSet, testSet}) do
   ds:prepare(function(done, total) io.write(string.format('\rsaccades: %d / %d new images', done, total)) io.flush() end)
   io.write('\n')
end
print(string.format('converted or found %d + %d samples in %.1f s (cache: %s/cache)', #trainSet, #testSet,
   utils.now() - t0, opt.out))

local net = model.Network(netParams)
local err = snn.loss(netParams)
local optimizer = snn.optim.Adam(net:parameters(), {lr = opt.lr, amsgrad = true})
local trainLoader = snn.data.Loader(trainSet, {batchSize = opt.batch, shuffle = true, seed = opt.seed, workers = opt.workers})
local testLoader = snn.data.Loader(testSet, {batchSize = opt.batch, workers = opt.workers})
local stats = snn.stats{epochSamples = {train = #trainSet, test = #testSet}}

for epoch = 0, opt.epochs - 1 do
   local tSt, i = utils.now(), 0
   net:train()
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
      if i % (stats.tty and 10 or 100) == 0 then stats:print(epoch, i, utils.now() - tSt) end
   end
   net:evaluate()
   local _, _, nCorrect, n, lossSum = utils.evaluate(net, testLoader, function(o, t) return err:numSpikes(o, t) end)
   stats.testing.correctSamples, stats.testing.numSamples, stats.testing.lossSum = nCorrect, n, lossSum
   stats:print(epoch, i, utils.now() - tSt)
   stats:newline()
   stats:update()
end

net:save(opt.out .. '/checkpoint.t7s')
stats:save(opt.out .. '/')
local plots = stats:plot{path = opt.out .. '/', title = 'Fashion-MNIST events'}
snn.noGrad(function()
   for input in testLoader:iter() do
      snn.io.raster(net(input):narrow(1, 1, 4), opt.out .. '/output-raster.png')
      break
   end
end)
utils.writeFile(opt.out .. '/options.json', utils.json(opt) .. '\n')
local acc = stats.testing.accuracyLog[opt.epochs] or 0
print(string.format('test accuracy %.4f on %d held-out Fashion-MNIST event samples (trained on %d)', acc, #testSet,
   #trainSet))
print('plots: ' .. table.concat(plots, ', '))
print('output-layer raster (4 test samples): ' .. opt.out .. '/output-raster.png')
print('checkpoint: ' .. opt.out .. '/checkpoint.t7s (luajit examples/fashion-events/eval.lua ' .. opt.out
   .. '/checkpoint.t7s)')
print('RESULT ' .. utils.json({
   example = 'fashion-events', epochs = opt.epochs, seed = opt.seed, threads = opt.threads,
   trainSamples = #trainSet, testSamples = #testSet, trainAccuracy = stats.training.accuracyLog[opt.epochs] or 0,
   testAccuracy = acc, trainLoss = stats.training.lossLog[opt.epochs], testLoss = stats.testing.lossLog[opt.epochs],
   seconds = utils.now() - t0,
}))
