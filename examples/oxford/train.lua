-- The reference's spike-pattern task (example/01_Oxford): 200 -> 256 -> 200 SRM
-- neurons learn to emit a target raster from fixed input spike trains (spikeTime loss).
--   luajit examples/oxford/train.lua [--epochs 10000] [--data <folder with input.bs1, output.bs1>] [--help]
local here = arg[0]:match('^(.*)/[^/]*$') or '.'
package.path = here .. '/../../lua/?.lua;' .. here .. '/../../lua/?/init.lua;' .. package.path
local snn = require 'slayer'
local utils = snn.utils

local opt = utils.options(arg, {
   epochs = {10000, 'training epochs (one presentation of the pattern each)', integer = true, min = 1},
   lr = {0.01, 'Adam learning rate', above = 0}, seed = {1, 'random seed', integer = true, min = 0, max = 2 ^ 53},
   threads = {2, 'CPU threads', integer = true, min = 1},
   out = {'out/oxford', 'folder for checkpoint, statistics and pictures'},
   every = {100, 'print every this many epochs', integer = true, min = 1},
   data = {here .. '/../../../shared/data/oxford', 'folder with input.bs1 and output.bs1 (generated when absent)'},
}, 'luajit examples/oxford/train.lua [options]')
snn.setNumThreads(opt.threads)
utils.mkdir(opt.out)

local model = dofile(here .. '/model.lua')
local netParams = snn.params(here .. '/network.yaml')
local input, desired, source = model.data(netParams, opt.data, opt.seed)
print('spike pattern: ' .. source)
snn.manualSeed(opt.seed)
local net = model.Network(netParams)
local err = snn.loss(netParams)
local optimizer = snn.optim.Adam(net:parameters(), {lr = opt.lr, amsgrad = true})
local stats = snn.stats()

local t0, first = utils.now(), nil
for epoch = 0, opt.epochs - 1 do
   local output = net(input)
   local loss = err:spikeTime(output, desired)
   first = first or loss:item()
   stats.training.numSamples, stats.training.lossSum = 1, loss:item()
   stats.training.correctSamples = model.match(output, desired)
   if epoch % opt.every == 0 then stats:print(epoch, nil, utils.now() - t0) end
   stats.training:update()
   if stats.training.bestLoss or epoch == 0 then net:save(opt.out .. '/checkpoint.t7s') end
   if loss:item() < 1e-5 then break end
   optimizer:zeroGrad()
   loss:backward()
   optimizer:step()
end

-- the best network (lowest loss), as the reference keeps it
net:load(opt.out .. '/checkpoint.t7s')
local output = snn.noGrad(function() return net(input) end)
local loss, acc = err:spikeTime(output, desired):item(), model.match(output, desired)
snn.io.raster({output:view({200, 1, 1, -1}), desired:view({200, 1, 1, -1})}, opt.out .. '/output-vs-target.png')
snn.io.raster(input:view({200, 1, 1, -1}), opt.out .. '/input.png')
stats.testing.lossLog = stats.training.lossLog
local lossPlot = snn.plot.lines({{name = 'Training', values = stats.training.lossLog}},
   {output = opt.out .. '/loss', ylabel = 'spikeTime loss', logy = true, title = 'Oxford'})
print(string.format('loss %.6g -> %.6g (best), target spikes matched within 2 ms: %.3f', first, loss, acc))
print('wrote ' .. opt.out .. '/output-vs-target.png (learned | target), ' .. lossPlot[1] .. ', ' .. opt.out .. '/checkpoint.t7s')
print('RESULT ' .. utils.json({
   example = 'oxford', epochs = #stats.training.lossLog, seed = opt.seed, threads = opt.threads, source = source,
   firstLoss = first, trainLoss = loss, testLoss = loss, trainAccuracy = acc, testAccuracy = acc,
   seconds = utils.now() - t0,
}))
