-- What print() shows in the REPL for the objects a training script builds:
-- a shape, a network, an optimizer, learning statistics, network parameters.
local snn = require 'slayer'
local H = require 'support.helpers'
local T = snn.tensor

local function params()
   return snn.params({
      neuron = {type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1, scaleRho = 1},
      simulation = {Ts = 1, tSample = 20},
   })
end

describe('REPL printing', function()
   it('x:size() prints as the shape and stays a plain list of numbers', function()
      local s = T.zeros({2, 3, 4, 1, 20}):size()
      assert.are.equal('[2, 3, 4, 1, 20]', tostring(s))
      assert.are.equal(5, #s)
      assert.are.same({2, 3, 4, 1, 20}, {unpack(s)})
      assert.are.equal('table', type(s))
      -- usable wherever a shape is expected
      assert.are.equal('[2, 3, 4, 1, 20]', tostring(T.zeros(s):size()))
   end)

   it('a network prints its modules, nested ones indented, lists by index', function()
      local p = params()
      local Net = snn.class('ReplNet', snn.Module)
      function Net:__init()
         snn.Module.__init(self)
         self.slayer = snn.layer(p.neuron, p.simulation)
         self.fc1 = self.slayer:dense(8, 4)
         self.blocks = {self.slayer:dense(4, 3), snn.Sequential():add(self.slayer:dense(3, 2))}
         self.scale = 2 -- not a module: not listed
      end
      local text = tostring(Net())
      local lines = {}
      for l in text:gmatch('[^\n]+') do lines[#lines + 1] = l end
      assert.are.same({
         'ReplNet {',
         '  (blocks.1): dense(1x1x4 -> 3)',
         '  (blocks.2): Sequential {',
         '    (1): dense(1x1x3 -> 2)',
         '  }',
         '  (fc1): dense(1x1x8 -> 4)',
         '  (slayer): ' .. tostring(Net().slayer),
         '}',
      }, lines)
      -- a module holding no modules prints its class name, as before
      local Leaf = snn.class('ReplLeaf', snn.Module)
      assert.are.equal('ReplLeaf', tostring(Leaf()))
   end)

   it('a module that refers back to its parent prints once', function()
      local Net = snn.class('ReplCycle', snn.Module)
      local net = Net()
      local child = snn.Sequential()
      net.child, child.parent = child, net
      assert.are.equal('ReplCycle {\n  (child): Sequential {\n  }\n}', tostring(net))
   end)

   it('an optimizer prints its settings and what it updates', function()
      local w, b = T.zeros({4, 3}):requiresGrad(true), T.zeros({3}):requiresGrad(true)
      assert.are.equal('Adam(lr = 0.01, amsgrad = true, betas = {0.9, 0.999}, eps = 1e-08, weightDecay = 0)'
         .. ' over 2 tensors (15 values)', tostring(snn.optim.Adam({w, b}, {lr = 0.01, amsgrad = true})))
      assert.are.equal('SGD(lr = 0.1, dampening = 0, momentum = 0.9, nesterov = false, weightDecay = 0)'
         .. ' over 1 tensor (12 values)', tostring(snn.optim.SGD({w}, {lr = 0.1, momentum = 0.9})))
   end)

   it('learning statistics print this epoch and the best so far', function()
      local st = snn.stats({out = {write = function() end, flush = function() end}})
      assert.are.equal('snn.stats\n  training: no samples this epoch; 0 epochs logged\n'
         .. '  testing:  no samples this epoch; 0 epochs logged', tostring(st))
      st.training.numSamples, st.training.lossSum, st.training.correctSamples = 10, 5, 7
      assert.are.equal('loss 0.5, accuracy 0.7 over 10 samples this epoch; 0 epochs logged', tostring(st.training))
      st:update()
      st.training.numSamples, st.training.lossSum, st.training.correctSamples = 10, 8, 4
      st:update()
      assert.are.equal('no samples this epoch; 2 epochs logged (min loss 0.5, max accuracy 0.7)', tostring(st.training))
   end)

   it('a dataset and a loader print what they hold and how they batch', function()
      local data = assert(H.dataDir(), 'no ../shared/data')
      local ds = snn.data.SpikeFiles{root = data .. '/nmnist-small', list = 'test100.txt', tSample = 250, Ts = 2,
         limit = 30}
      assert.are.equal('snn.data.SpikeFiles: 30 samples of 2x34x34 x 125 bins (Ts 2 ms), 10 classes', tostring(ds))
      local loader = snn.data.Loader(ds, {batchSize = 8, shuffle = true, seed = 3, workers = 1})
      assert.are.equal('snn.data.Loader over ' .. tostring(ds) .. '\n  batches of 8, shuffled (seed 3), 1 worker thread',
         tostring(loader))
      assert.are.equal('snn.data.Loader over ' .. tostring(ds) .. '\n  batches of 4, last partial batch dropped, '
         .. '0 worker threads', tostring(snn.data.Loader(ds, {batchSize = 4, dropLast = true})))
   end)

   it('network parameters print as params:print writes them', function()
      local p = params()
      local printed = p:print(nil, function() end)
      assert.are.equal(printed, tostring(p))
      assert.truthy(tostring(p):find('theta      : 10', 1, true))
      assert.are.equal('snn.params (empty)', tostring(snn.params({})))
   end)
end)
