--[[
Train the reference's auto-generated Loihi N-MNIST MLP
(exampleLoihi/04_NMNISTAuto): snn.auto.loihi.Network builds flatten -> 2312
-> 512 -> 512 -> 11 LOIHI neurons from the `layer` list of network.yaml,
snn.auto.dataset bins each sample's events, and snn.auto.assistant runs the
training and testing passes: numSpikes loss (60 spikes for the true class,
10 otherwise, in [0, 300) ms) through the Loihi psp kernel, Nadam lr 0.01
with amsgrad, batch 12, 50 epochs, the training samples in list order
(as the reference's notebook, whose logs are the reported results; its
nmnistTrain.py shuffles: --shuffle true); then the network of the best test
accuracy is exported for the chip, as the reference's genModel.

    luajit examples/nmnist-auto/train.lua [--epochs 50] [--data ../shared/data/nmnist-small]

Writes to --out: learning curves (loss.png, accuracy.png), loss.txt and
accuracy.txt, checkpoint.t7s (after every epoch; eval.lua reproduces its
test accuracy), best.t7s (the epoch of the best test accuracy),
gradFlow.png, options.json and loihi/ (snn.loihi.export of best.t7s).
Ends with one line `RESULT {json}`.
]]
local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/[^/]*$') or '.'
local root = here .. '/../..'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. here .. '/?.lua;' .. package.path

local snn = require 'slayer'
local model = require 'model'

local opt = snn.utils.options(arg, {
   epochs = {50, 'training epochs', integer = true, min = 1},
   batch = {12, 'batch size', integer = true, min = 1},
   lr = {0.01, 'Nadam learning rate', above = 0},
   seed = {1, 'seed of the weight initialisation (and of --shuffle)', integer = true, min = 0, max = 2 ^ 53},
   threads = {2, 'CPU threads', integer = true, min = 1},
   out = {'out/nmnist-auto', 'folder for checkpoints, statistics, plots and the Loihi export'},
   data = {root .. '/../shared/data/nmnist-small', 'N-MNIST folder with train1K.txt, test100.txt, <index>.bs2'},
   train = {0, 'use only this many training samples (0: all)', integer = true, min = 0},
   test = {0, 'use only this many test samples (0: all)', integer = true, min = 0},
   shuffle = {false, 'shuffle the training set every epoch (the reference\'s notebook does not)'},
}, 'luajit examples/nmnist-auto/train.lua [options]')

snn.setNumThreads(opt.threads)
snn.manualSeed(opt.seed)
local netParams = snn.params(here .. '/network.yaml')
local net = snn.auto.loihi.Network(netParams)   -- prints the sections and the layer table, as the reference
local lossFn = snn.loss(netParams, snn.loihi)    -- the loss's psp is the Loihi kernel
local optimizer = snn.optim.Nadam(net:parameters(), {lr = opt.lr, amsgrad = true})

-- the auto dataset is a Lua dataset: the loader reads and bins it in this thread
local trainingSet = model.dataset(opt.data, 'train1K.txt', opt.train, net)
local testingSet = model.dataset(opt.data, 'test100.txt', opt.test, net)
local trainLoader = snn.data.Loader(trainingSet, {batchSize = opt.batch, shuffle = opt.shuffle, seed = opt.seed})
local testLoader = snn.data.Loader(testingSet, {batchSize = opt.batch})
snn.utils.mkdir(opt.out)

local stats = snn.stats{epochSamples = {train = trainingSet:size(), test = testingSet:size()}}
local boss = snn.auto.assistant(net, trainLoader, testLoader, function(o, t) return lossFn:numSpikes(o, t) end,
   optimizer, {stats = stats, showTimeSteps = true})

local tStart = snn.utils.now()
local bestTest = 0
for epoch = 0, opt.epochs - 1 do
   local tEpoch = snn.utils.now()
   -- the assistant's per-batch lines only in a terminal (redrawn there); one block per epoch
   boss:train(epoch, {printLog = stats.tty})
   boss:test(epoch, {printLog = stats.tty})
   stats:print(epoch, nil, snn.utils.now() - tEpoch)
   stats:newline()
   stats:update()
   stats:save(opt.out .. '/')
   net:save(opt.out .. '/checkpoint.t7s')
   -- (not stats.testing.bestAccuracy: it stays false at the first epoch with any correct sample)
   local accuracy = stats.testing.accuracyLog[#stats.testing.accuracyLog] or 0
   if epoch == 0 or accuracy > bestTest then
      bestTest = accuracy
      net:save(opt.out .. '/best.t7s')
   end
end
stats:plot{path = opt.out .. '/', title = 'Loihi N-MNIST MLP (auto)'}
net:gradFlow(opt.out .. '/') -- the last batch's gradient per block, as the reference's last gradFlow.png

-- the best network's integer weights for the chip, one file per dense block
net:load(opt.out .. '/best.t7s')
snn.loihi.export(net, opt.out .. '/loihi')
snn.utils.writeFile(opt.out .. '/options.json', snn.utils.json(opt) .. '\n')

local last = #stats.training.lossLog
local seconds = snn.utils.now() - tStart
print('RESULT ' .. snn.utils.json{
   example = 'nmnist-auto', epochs = opt.epochs, seed = opt.seed, batch = opt.batch, lr = opt.lr, threads = opt.threads,
   trainAccuracy = stats.training.accuracyLog[last] or 0, testAccuracy = stats.testing.accuracyLog[last] or 0,
   bestTestAccuracy = bestTest, trainLoss = stats.training.lossLog[last] or nil,
   testLoss = stats.testing.lossLog[last] or nil, seconds = seconds,
   epochSeconds = seconds / math.max(opt.epochs, 1), checkpoint = opt.out .. '/checkpoint.t7s',
})
