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
      local sgd = snn.optim.SGD({w}, {lr = 0.1, momentum = 0.9})
      assert.are.equal('SGD(lr = 0.1, dampening = 0, momentum = 0.9, nesterov = false, weightDecay = 0)'
         .. ' over 1 tensor (12 values)', tostring(sgd))
      sgd.scale = T.ones({2}) -- a tensor field of one's own is not a setting (and not indexed)
      assert.are.equal('SGD(lr = 0.1, dampening = 0, momentum = 0.9, nesterov = false, weightDecay = 0)'
         .. ' over 1 tensor (12 values)', tostring(sgd))
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

   describe('common slips get an error saying what to write', function()
      local p = params()
      local sl = snn.layer(p.neuron, p.simulation)
      local function msg(f)
         local ok, e = pcall(f)
         assert.is_false(ok)
         return tostring(e)
      end

      it('x[i] on a tensor, read or written, instead of nil or a stray field', function()
         local x = T.fromtable({1, 2, 3})
         assert.truthy(msg(function() return x[2] end):find('tensor: indexing x[2] is not supported: use x:select', 1, true))
         assert.truthy(msg(function() x[1] = 5 end):find('tensor: assigning to x[1] is not supported', 1, true))
         assert.are.same({1, 2, 3}, x:totable())
         assert.is_nil(rawget(x, 1))
         x.note = 'fields with names still work'
         assert.are.equal('fields with names still work', x.note)
         assert.is_nil(x.noSuchField)
      end)

      it("PyTorch's dimension 0", function()
         local x = T.zeros({2, 3})
         for _, f in ipairs({function() return x:sum(0) end, function() return x:size(0) end,
               function() return x:narrow(0, 1, 1) end}) do
            assert.truthy(msg(f):find('dimension 0 out of range for a 2-D tensor [2, 3] (dimensions count from 1 '
               .. 'here, as in Torch; -1 is the last)', 1, true))
         end
         assert.is_nil(msg(function() return x:sum(3) end):find('count from 1', 1, true))
         assert.are.same({2, 1}, x:sum(-1):shape()) -- (Torch keeps the summed dimension)
      end)

      it("a layer's method called with a dot", function()
         assert.truthy(msg(function() return sl.dense(8, 4) end):find(
            'dense: call it with a colon, sl:dense(...), on a layer made by snn.layer (got 8 as the layer)', 1, true))
         assert.truthy(msg(function() return sl.psp(T.zeros({1, 1, 1, 1, 20})) end):find(
            'psp: call it with a colon', 1, true))
         local lp = snn.params({neuron = {type = 'LOIHI', vThMant = 80, vDecay = 128, iDecay = 1024, refDelay = 1,
            wgtExp = 0, tauRho = 1, scaleRho = 1}, simulation = {Ts = 1, tSample = 20}})
         local lh = snn.loihi(lp.neuron, lp.simulation)
         assert.truthy(msg(function() return lh.spikeLoihi(T.zeros({1, 1, 1, 1, 20})) end):find(
            'spikeLoihi: call it with a colon, sl:spikeLoihi(...), on a layer made by snn.loihi', 1, true))
         -- the colon form and the inherited methods are unchanged
         assert.are.equal('dense(1x1x8 -> 4)', tostring(sl:dense(8, 4)))
         assert.are.same({1, 1, 1, 1, 20}, lh:psp(T.zeros({1, 1, 1, 1, 20})):shape())
      end)

      it('a layer instead of its class in snn.loss', function()
         p.training = {error = {type = 'NumSpikes', tgtSpikeRegion = {start = 0, stop = 20},
            tgtSpikeCount = {[true] = 5, [false] = 1}}}
         assert.truthy(msg(function() return snn.loss(p, sl) end):find(
            'loss: expected a layer class (snn.layer or snn.loihi) after the network descriptor, got a layer made by '
            .. 'snn.layer: write snn.loss(params, snn.layer)', 1, true))
         assert.are.equal('snn.loss(NumSpikes)', tostring(snn.loss(p, snn.layer)))
      end)

      it('an optimizer given a module, or no parameters', function()
         assert.truthy(msg(function() return snn.optim.Adam(sl:dense(8, 4), {lr = 0.1}) end):find(
            'Adam: expected a list of parameter tensors, got the module ' .. sl:dense(8, 4).__typename
            .. ': pass its :parameters()', 1, true))
         local Empty = snn.class('ReplEmpty', snn.Module)
         assert.truthy(msg(function() return snn.optim.SGD(Empty():parameters()) end):find(
            'SGD: the list of parameters is empty', 1, true))
      end)
   end)
end)
