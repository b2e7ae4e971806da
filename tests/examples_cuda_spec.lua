--[[
The examples' networks on the GPU (run by bench/device.sh): each example's
own model.lua and network.yaml, its optimizer and loss, trained for a few
epochs on a few real samples with every tensor on the device.  Checked:
  - the untrained network scores the first batch like the CPU (within 5%:
    a membrane potential that rounding puts on the other side of the
    threshold may flip a spike, so the exact difference is printed);
  - the training loss falls, and parameters, gradients and optimizer state
    stay on the device;
  - the checkpoint written from the GPU loads into a CPU network that scores
    the test batch like the GPU did (within 5%, difference printed).
Without a usable GPU the file reports itself as skipped, with the reason.
SLAYER_CUDA_SPEC_DEVICE=cpu runs it with the CPU standing in for the GPU.
]]
local snn = require 'slayer'
local T = snn.tensor
local G = require 'support.cuda'
local H = require 'support.helpers'

local DEV = G.DEV
local ROOT = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/tests/[^/]*$') or '.'
local DATA = H.dataDir()

if not G.available then
   describe('examples on the GPU', function() pending(G.reason) end)
   return
end
if not DATA then
   describe('examples on the GPU', function() pending('shared data not found (../shared/data or SLAYER_DATA)') end)
   return
end

local function example(name) return ROOT .. '/examples/' .. name .. '/' end

-- the first `limit` samples of an N-MNIST list as batches of 12, on the CPU
local function nmnistBatches(netParams, list, limit)
   local ds = snn.data.SpikeFiles{root = DATA .. '/nmnist-small', list = list, shape = {2, 34, 34},
      tSample = netParams.simulation.tSample, Ts = netParams.simulation.Ts, classes = 10, limit = limit}
   local batches = {}
   for input, target in snn.data.Loader(ds, {batchSize = 12}):iter() do batches[#batches + 1] = {input, target} end
   return batches
end

local function relDiff(a, b) return math.abs(a - b) / math.max(math.abs(b), 1e-30) end

local function onDevice(net, opt)
   for _, p in ipairs(net:parameters()) do
      assert.are.equal(DEV, p.device)
      if p.grad then assert.are.equal(DEV, p.grad.device) end
   end
   for _, st in pairs(opt.state or {}) do
      if type(st) == 'table' and T.isTensor(st.m) then assert.are.equal(DEV, st.m.device) end
   end
end

--[[ o: name, build(netParams) -> net, lossClass, Optim, lossFn(err, out, target),
   train (batches), test (batch), epochs, augment(input) (CPU, optional) ]]
local function smoke(o)
   local netParams = snn.params(example(o.name) .. 'network.yaml')
   snn.manualSeed(1)
   local cnet = o.build(netParams)
   snn.manualSeed(1)
   local gnet = o.build(netParams):to(DEV)
   local cerr = snn.loss(netParams, o.lossClass)
   local gerr = snn.loss(netParams, o.lossClass):to(DEV)

   -- 1. the untrained network on the first batch, both devices
   cnet:evaluate()
   gnet:evaluate()
   local x, y = o.train[1][1], o.train[1][2]
   local cl = snn.noGrad(function() return o.lossFn(cerr, cnet(x), y):item() end)
   local gl = snn.noGrad(function() return o.lossFn(gerr, gnet(x:to(DEV)), y:to(DEV)):item() end)
   print(string.format('  note: %s untrained loss %.9g on %s, %.9g on the CPU (relative difference %.3g)', o.name, gl,
      DEV, cl, relDiff(gl, cl)))
   assert.is_true(relDiff(gl, cl) <= 0.05, o.name .. ': untrained loss ' .. gl .. ' vs ' .. cl)

   -- 2. training on the device
   local opt = o.Optim(gnet:parameters(), {lr = 0.01, amsgrad = true})
   local epochLoss = {}
   gnet:train()
   for e = 1, o.epochs do
      local sum = 0
      for _, b in ipairs(o.train) do
         local input = o.augment and o.augment(b[1]) or b[1]
         local out = gnet(input:to(DEV))
         local loss = o.lossFn(gerr, out, b[2]:to(DEV))
         opt:zeroGrad()
         loss:backward()
         opt:step()
         sum = sum + loss:item()
      end
      epochLoss[e] = sum
   end
   print(string.format('  note: %s training loss on %s, epoch by epoch: %s', o.name, DEV, o.epochs <= 10
      and table.concat(epochLoss, ', ') or (epochLoss[1] .. ', ..., ' .. epochLoss[o.epochs])))
   for e = 1, o.epochs do assert.is_true(epochLoss[e] == epochLoss[e], 'loss is NaN') end
   assert.is_true(epochLoss[o.epochs] < epochLoss[1], o.name .. ': the loss should fall')
   onDevice(gnet, opt)

   -- 3. the GPU checkpoint on the CPU
   gnet:evaluate()
   local tx, ty = o.test[1], o.test[2]
   local gTest = snn.noGrad(function() return o.lossFn(gerr, gnet(tx:to(DEV)), ty:to(DEV)):item() end)
   local path = os.tmpname()
   gnet:save(path)
   local back = o.build(netParams):load(path):evaluate()
   os.remove(path)
   local cTest = snn.noGrad(function() return o.lossFn(cerr, back(tx), ty):item() end)
   print(string.format('  note: %s trained on %s, test loss %.9g there, %.9g on the CPU from its checkpoint', o.name,
      DEV, gTest, cTest))
   assert.is_true(relDiff(cTest, gTest) <= 0.05, o.name .. ': test loss ' .. cTest .. ' on the CPU vs ' .. gTest)
   return epochLoss
end

local function numSpikes(err, out, target) return err:numSpikes(out, target) end

describe('examples on the GPU', function()
   it('nmnist-mlp trains on the device and its checkpoint scores alike on the CPU', function()
      local Network = dofile(example('nmnist-mlp') .. 'model.lua')
      local p = snn.params(example('nmnist-mlp') .. 'network.yaml')
      smoke{name = 'nmnist-mlp', build = Network, Optim = snn.optim.Adam, lossFn = numSpikes, epochs = 3,
         train = nmnistBatches(p, 'train1K.txt', 24), test = nmnistBatches(p, 'test100.txt', 12)[1]}
   end)

   it('nmnist-cnn trains on the device with jitter and dropout', function()
      local M = dofile(example('nmnist-cnn') .. 'model.lua')
      local p = snn.params(example('nmnist-cnn') .. 'network.yaml')
      smoke{name = 'nmnist-cnn', build = function(np) return M.Network(np, 0.1) end, Optim = snn.optim.Adam,
         lossFn = numSpikes, epochs = 3, augment = function(x) return snn.data.jitter(x, 2) end,
         train = nmnistBatches(p, 'train1K.txt', 24), test = nmnistBatches(p, 'test100.txt', 12)[1]}
   end)

   it('nmnist-loihi trains its integer neurons on the device (Nadam, Loihi loss kernel)', function()
      local M = dofile(example('nmnist-loihi') .. 'model.lua')
      local p = snn.params(example('nmnist-loihi') .. 'network.yaml')
      smoke{name = 'nmnist-loihi', build = M.Network, lossClass = snn.loihi, Optim = snn.optim.Nadam,
         lossFn = numSpikes, epochs = 3, train = nmnistBatches(p, 'train1K.txt', 24),
         test = nmnistBatches(p, 'test100.txt', 12)[1]}
   end)

   it('oxford learns its spike pattern on the device from the notebook loss of the silent network', function()
      local M = dofile(example('oxford') .. 'model.lua')
      local p = snn.params(example('oxford') .. 'network.yaml')
      local input, target = M.data(p, DATA .. '/oxford', 1)
      local losses = smoke{name = 'oxford', build = M.Network, Optim = snn.optim.Adam, epochs = 120,
         lossFn = function(err, out, tgt) return err:spikeTime(out, tgt) end,
         train = {{input, target}}, test = {input, target}}
      assert.is_true(math.abs(losses[1] - 223909.1) < 1, 'first loss ' .. losses[1]) -- the reference notebook's epoch 0
      assert.is_true(losses[120] < 0.8 * losses[1], losses[1] .. ' -> ' .. losses[120])
   end)
end)
