-- Reload a checkpoint of examples/oxford and score it on the pattern.
--   luajit examples/oxford/eval.lua out/oxford/checkpoint.t7s [--data <folder>]
local here = arg[0]:match('^(.*)/[^/]*$') or '.'
package.path = here .. '/../../lua/?.lua;' .. here .. '/../../lua/?/init.lua;' .. package.path
local snn = require 'slayer'
local utils = snn.utils

local opt = utils.options(arg, {
   {'checkpoint', 'written by train.lua, e.g. out/oxford/checkpoint.t7s'},
   seed = {1, 'seed used for training (for the generated pattern)', integer = true, min = 0, max = 2 ^ 53},
   threads = {2, 'CPU threads', integer = true, min = 1},
   data = {here .. '/../../../shared/data/oxford', 'folder with input.bs1 and output.bs1 (generated when absent)'},
}, 'luajit examples/oxford/eval.lua <checkpoint> [options]')
local checkpoint = opt.checkpoint
if not utils.exists(checkpoint) then
   io.stderr:write('oxford eval: no checkpoint at ' .. checkpoint .. ' (give the one train.lua wrote)\n')
   os.exit(1)
end
snn.setNumThreads(opt.threads)
local model = dofile(here .. '/model.lua')
local netParams = snn.params(here .. '/network.yaml')
local input, desired = model.data(netParams, opt.data, opt.seed)
local net = model.Network(netParams):load(checkpoint)
local output = snn.noGrad(function() return net(input) end)
local loss, acc = snn.loss(netParams):spikeTime(output, desired):item(), model.match(output, desired)
print(string.format('spikeTime loss %.6g, target spikes matched within 2 ms: %.3f', loss, acc))
print('RESULT ' .. utils.json({example = 'oxford', testLoss = loss, testAccuracy = acc}))
