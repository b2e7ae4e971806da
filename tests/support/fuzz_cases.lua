--[[
The fuzz targets of tests/fuzz_spec.lua: every public function and method,
each with a valid call and the names its errors must carry.

cases(snn, dir) returns a list of targets {label, names, args, call, skip,
pool, extra}:
  args()   a fresh list of valid arguments (n = #positions; nil holes allowed)
  call     function(...) making the call the way a user writes it
  names    substrings of which an error message must hold one (the function's
           name as the user wrote it)
  recv     position 1 is a receiver: it gets only the tensor values
  skip     positions not fuzzed
  pool     'light' for slow calls (files, subprocesses): fewer values;
           'none': only the extra values
  extra    more bad values for this target: {{label, make[, must = true][, pos = n]}, ...};
           must: the call has to raise (nonsense a call would otherwise accept);
           pos: only at argument position n
The child (fuzz_child.lua) calls each target once per position per bad value.
]]
return function(snn, dir)
   local T = snn.tensor

   local NEURON = {type = 'SRMALPHA', theta = 10, tauSr = 10, tauRef = 1, scaleRef = 2, tauRho = 1, scaleRho = 1}
   local LOIHI = {type = 'LOIHI', vThMant = 80, vDecay = 128, iDecay = 1024, refDelay = 1, wgtExp = 0, tauRho = 1,
      scaleRho = 1}
   local SIM = {Ts = 1, tSample = 8}
   local function copy(t) local c = {} for k, v in pairs(t) do c[k] = type(v) == 'table' and copy(v) or v end return c end
   local function t5() return T.rand({2, 3, 4, 4, 8}) end
   local function spikes5(c) return T.bernoulli({2, c or 3, 4, 4, 8}, 0.3) end
   local function layer() return snn.layer(copy(NEURON), copy(SIM)) end
   local function loihi() return snn.loihi(copy(LOIHI), copy(SIM)) end
   local function netParams()
      return {neuron = copy(NEURON), simulation = copy(SIM), training = {error = {type = 'NumSpikes',
         tgtSpikeRegion = {start = 0, stop = 8}, tgtSpikeCount = {[true] = 4, [false] = 1}}}}
   end
   local function ev2() return snn.io.event({0, 1, 2}, {0, 1, 2}, {0, 1, 0}, {0.5, 1.5, 2.5}) end
   local function ev1() return snn.io.event({0, 1, 2}, nil, {0, 1, 0}, {0.5, 1.5, 2.5}) end
   local function ev3() return snn.io.event({0, 1, 2}, {0, 1, 2}, {0, 1, 0}, {0.5, 1.5, 2.5}) end
   local function path(name) return dir .. '/' .. name end
   local function writeFile(p, s) local f = assert(io.open(p, 'wb')) f:write(s) f:close() return p end

   -- files the readers get: good ones written by the package, a corrupt one
   local good2 = path('good.bs2'); snn.io.encode2Dspikes(good2, ev2())
   local good1 = path('good.bs1'); snn.io.encode1Dspikes(good1, ev1())
   local good3 = path('good.bs3'); snn.io.encode3Dspikes(good3, ev3())
   local goodn = path('good.bsn'); snn.io.encode1DnumSpikes(goodn, {0, 1}, {0, 0}, {5, 5}, {2, 3})
   local goodNpy = path('good.npy'); snn.io.encodeNpSpikes(goodNpy, ev2())
   local goodT = path('good.t7s'); snn.save(goodT, {w = T.ones({2, 2})})
   local goodYaml = writeFile(path('net.yaml'), 'neuron:\n  type: SRMALPHA\n  theta: 10\nsimulation:\n  Ts: 1\n')
   local corrupt = writeFile(path('corrupt.bin'), 'this is not any format at all, just some text bytes\n')
   local idx = writeFile(path('good.idx'), '\0\0\8\1\0\0\0\3\1\2\3')
   local list = writeFile(path('train.txt'), '#sample\tclass\n0\t0\n1\t1\n')
   local statsPrefix = path('stats-')
   do
      local s = snn.stats()
      s.training.numSamples, s.training.lossSum, s.training.correctSamples = 4, 2, 3
      s.testing.numSamples, s.testing.lossSum, s.testing.correctSamples = 2, 1, 1
      s:update()
      s:save(statsPrefix)
   end
   snn.io.encode2Dspikes(path('0.bs2'), ev2()); snn.io.encode2Dspikes(path('1.bs2'), ev2())
   local function files()
      return snn.data.SpikeFiles{root = dir, list = 'train.txt', shape = {2, 4, 4}, tSample = 8, Ts = 1, classes = 2}
   end

   -- extra bad values for paths and files
   local PATHS = {
      {'missing file', function() return path('nope/missing.bin') end},
      {'directory', function() return dir end},
      {'corrupt file', function() return corrupt end},
      {'empty string', function() return '' end},
   }
   local OUTPATHS = {
      {'path under a file', function() return corrupt .. '/sub/out.x' end},
      {'directory as file', function() return dir end},
      {'empty string', function() return '' end},
   }
   -- more tensors of the wrong kind
   local TENSORS = {
      {'1-element', function() return T.ones({1}) end},
      {'3-D', function() return T.rand({2, 3, 4}) end},
      {'4-D', function() return T.rand({2, 3, 4, 4}) end},
      {'6-D', function() return T.rand({1, 2, 3, 4, 4, 8}) end},
      {'5-D 1 channel', function() return T.rand({2, 1, 4, 4, 8}) end},
      {'5-D other T', function() return T.rand({2, 3, 4, 4, 5}) end},
   }

   local function must(label, make, pos) return {label, make, must = true, pos = pos} end

   local C = {}
   local function add(c) C[#C + 1] = c end
   local function tensorMethod(name, args, opts)
      opts = opts or {}
      add({label = 'Tensor:' .. name, names = opts.names or {name}, recv = true, skip = opts.skip,
         args = function() return {(opts.self or function() return T.rand({2, 3}) end)(), unpack(args(), 1, opts.n or 4)} end,
         n = (opts.n or #args()) + 1,
         call = function(self, ...) return self[name](self, ...) end, extra = opts.extra})
   end
   local function fn(label, names, args, call, opts)
      opts = opts or {}
      local proto = args()
      add({label = label, names = names, args = args, n = opts.n or #proto, call = call, recv = opts.recv,
         skip = opts.skip, pool = opts.pool, extra = opts.extra})
   end

   ------------------------------------------------------------------------
   -- tensor constructors
   ------------------------------------------------------------------------
   for _, name in ipairs({'empty', 'zeros', 'ones', 'rand', 'randn'}) do
      fn('T.' .. name, {name}, function() return {{2, 3}, 'cpu'} end, function(...) return T[name](...) end,
         {extra = {{'huge shape', function() return {2 ^ 31 - 1, 2 ^ 31 - 1, 4} end},
            {'nan size', function() return {0 / 0} end}, {'9-D', function() return {1, 1, 1, 1, 1, 1, 1, 1, 1} end}}})
      fn('T.' .. name .. '(numbers)', {name}, function() return {2, 3} end, function(...) return T[name](...) end)
   end
   fn('T.full', {'full'}, function() return {{2, 3}, 1.5} end, T.full)
   fn('T.bernoulli', {'bernoulli'}, function() return {{2, 3}, 0.5} end, T.bernoulli)
   fn('T.arange', {'arange'}, function() return {1, 5, 1} end, T.arange,
      {extra = {{'tiny', function() return 1e-300 end}}})
   fn('T.fromtable', {'fromtable'}, function() return {{1, 2, 3, 4, 5, 6}, {2, 3}} end, T.fromtable,
      {extra = {{'ragged', function() return {{1, 2}, {3}} end}, {'holes', function() return {1, nil, 3} end},
         {'nested strings', function() return {{'a', 'b'}} end}}})
   fn('T.fromPointer', {'fromPointer'}, function() return {require('ffi').new('float[3]', 1, 2, 3), {3}} end, T.fromPointer,
      {extra = {must('float[2] for 3 floats', function() return require('ffi').new('float[2]') end, 1),
         must('int[3]', function() return require('ffi').new('int[3]') end, 1),
         must('float[3] for 10^8 floats', function() return {1e8} end, 2)}})
   fn('T.cat', {'cat'}, function() return {{T.ones({2, 3}), T.ones({2, 3})}, 1} end, T.cat,
      {extra = {{'list of numbers', function() return {1, 2} end}, {'mixed shapes', function() return {T.ones({2, 3}), T.ones({3, 2})} end},
         {'mixed ranks', function() return {T.ones({2, 3}), T.ones({6})} end}}})
   fn('T.stack', {'stack'}, function() return {{T.ones({2, 3}), T.ones({2, 3})}, 1} end, T.stack,
      {extra = {{'list of numbers', function() return {1, 2} end}, {'mixed shapes', function() return {T.ones({2, 3}), T.ones({3, 2})} end}}})
   fn('T.maximum', {'maximum'}, function() return {T.ones({2, 3}), T.ones({2, 3})} end, T.maximum)
   fn('T.minimum', {'minimum'}, function() return {T.ones({2, 3}), T.ones({2, 3})} end, T.minimum)
   fn('T.maxAbsDiff', {'maxAbsDiff'}, function() return {T.ones({2, 3}), T.ones({2, 3})} end, T.maxAbsDiff)
   fn('T.sumTo', {'sumTo'}, function() return {T.ones({2, 3}), T.ones({1, 3})} end, T.sumTo)
   for _, op in ipairs({'add', 'sub', 'mul', 'div'}) do
      fn('T.' .. op, {op}, function() return {T.ones({2, 3}), T.ones({2, 3})} end, T[op])
   end
   fn('a + b', {'add'}, function() return {T.ones({2, 3}), T.ones({3, 2})} end, function(a, b) return a + b end,
      {skip = {[1] = true}})
   fn('a ^ b', {'pow'}, function() return {T.ones({2, 3}), 2} end, function(a, b) return a ^ b end, {skip = {[1] = true}})

   ------------------------------------------------------------------------
   -- tensor methods
   ------------------------------------------------------------------------
   local none = function() return {} end
   for _, name in ipairs({'size', 'stride'}) do tensorMethod(name, function() return {1} end) end
   for _, name in ipairs({'shape', 'dim', 'numel', 'isContiguous', 'data', 'totable', 'item', 'contiguous', 'clone',
      'detach', 'zero', 'flatten', 'abs', 'exp', 'log', 'sqrt', 'sigmoid', 'tanh', 'relu', 'square', 'sign', 'floor',
      'ceil', 'round', 'neg', 'countNonzero', 'isLeaf', 'zeroGrad', 'type', 'cpu'}) do
      tensorMethod(name, none, {n = 1})
   end
   tensorMethod('fill', function() return {1} end)
   tensorMethod('copy', function() return {T.zeros({2, 3})} end)
   tensorMethod('view', function() return {{3, 2}} end, {extra = {{'-1 twice', function() return {-1, -1} end}}})
   tensorMethod('reshape', function() return {{3, 2}} end)
   tensorMethod('narrow', function() return {2, 2, 2} end)
   tensorMethod('select', function() return {1, 2} end)
   tensorMethod('permute', function() return {2, 1} end, {extra = {{'repeated', function() return 1 end}}})
   tensorMethod('transpose', function() return {1, 2} end)
   tensorMethod('unsqueeze', function() return {1} end)
   tensorMethod('squeeze', function() return {1} end)
   tensorMethod('expand', function() return {{4, 2, 3}} end)
   tensorMethod('expandAs', function() return {T.ones({4, 2, 3})} end)
   tensorMethod('to', function() return {'cpu'} end)
   tensorMethod('moveTo_', function() return {'cpu'} end)
   tensorMethod('requiresGrad', function() return {true} end)
   tensorMethod('backward', function() return {T.ones({2, 3})} end,
      {self = function() local x = T.rand({2, 3}):requiresGrad(true) return x * 2 end})
   for _, op in ipairs({'add', 'sub', 'mul', 'div', 'gt', 'ge', 'lt', 'le', 'eq', 'ne'}) do
      tensorMethod(op, function() return {T.ones({2, 3})} end)
   end
   tensorMethod('pow', function() return {2} end)
   tensorMethod('clamp', function() return {0, 1} end)
   tensorMethod('clamp_', function() return {0, 1} end)
   tensorMethod('add_', function() return {T.ones({2, 3}), 1} end)
   tensorMethod('mul_', function() return {2} end)
   tensorMethod('uniform_', function() return {0, 1} end)
   tensorMethod('normal_', function() return {0, 1} end)
   tensorMethod('bernoulli_', function() return {0.5} end)
   for _, name in ipairs({'sum', 'mean', 'max', 'min', 'argmax'}) do tensorMethod(name, function() return {1} end) end
   tensorMethod('matmul', function() return {T.ones({3, 4})} end)

   ------------------------------------------------------------------------
   -- the package table
   ------------------------------------------------------------------------
   fn('snn.manualSeed', {'manualSeed'}, function() return {1, 'cpu'} end, snn.manualSeed)
   fn('snn.setNumThreads', {'setNumThreads'}, function() return {2} end, snn.setNumThreads)
   fn('snn.memoryStats', {'memoryStats'}, function() return {'cpu'} end, snn.memoryStats)
   fn('snn.setCacheLimit', {'setCacheLimit'}, function() return {2 ^ 30, 'cpu'} end, snn.setCacheLimit)
   fn('snn.setReuseFactor', {'setReuseFactor'}, function() return {16} end, snn.setReuseFactor)
   fn('snn.emptyCache', {'emptyCache'}, function() return {'cpu'} end, snn.emptyCache)
   fn('snn.noGrad', {'noGrad'}, function() return {function() end} end, snn.noGrad)

   ------------------------------------------------------------------------
   -- layers and synapses
   ------------------------------------------------------------------------
   fn('snn.layer', {'layer'}, function() return {copy(NEURON), copy(SIM)} end, snn.layer,
      {extra = {{'neuron nan theta', function() local n = copy(NEURON) n.theta = 0 / 0 return n end},
         {'neuron zero tauSr', function() local n = copy(NEURON) n.tauSr = 0 return n end},
         {'neuron string theta', function() local n = copy(NEURON) n.theta = '10' return n end},
         {'sim Ts 0', function() return {Ts = 0, tSample = 8} end},
         {'sim tSample < Ts', function() return {Ts = 2, tSample = 1} end},
         {'sim Ts nan', function() return {Ts = 0 / 0, tSample = 8} end}}})
   fn('snn.layer.alphaKernel', {'alphaKernel'}, function() return {10, 1, 0.01, 1, 20} end, snn.layer.alphaKernel)
   local function layerMethod(name, args, opts)
      opts = opts or {}
      fn('layer:' .. name, opts.names or {name}, args,
         function(...) local sl = (opts.make or layer)() return sl[name](sl, ...) end, opts)
   end
   layerMethod('psp', function() return {spikes5()} end, {extra = TENSORS})
   layerMethod('spike', function() return {t5()} end, {extra = TENSORS})
   layerMethod('pspLayer', none)
   layerMethod('pspFilter', function() return {2, 4, 1} end,
      {extra = {must('scale tensor', function() return T.ones({}) end, 3),
         must('2^40 filters', function() return 2 ^ 40 end, 1)}})
   layerMethod('dense', function() return {{4, 4, 3}, 5} end,
      {extra = {{'huge', function() return 2 ^ 31 end}, {'{0,4,3}', function() return {0, 4, 3} end}}})
   layerMethod('conv', function() return {3, 4, 3, 1, 1, 1, 1} end,
      {extra = {{'groups not dividing', function() return 2 end}, {'{3, 0}', function() return {3, 0} end},
         must('2^31', function() return 2 ^ 31 end), must('{1, 2^31}', function() return {1, 2 ^ 31} end),
         {'{true}', function() return {true, true} end}}})
   layerMethod('pool', function() return {2, 2, 0, 1} end, {extra = {must('2^31', function() return 2 ^ 31 end)}})
   layerMethod('convTranspose', function() return {3, 4, 3, 1, 1, 1, 1} end)
   layerMethod('unpool', function() return {2, 2, 0, 1} end)
   layerMethod('dropout', function() return {0.1} end)
   layerMethod('delay', function() return {{3, 4, 4}} end)
   layerMethod('delayShift', function() return {t5(), 1, 1} end, {extra = {must('inf Ts', function() return math.huge end, 3)}})
   layerMethod('replicateInTime', function() return {T.rand({2, 3, 4, 4, 1}), 'nearest'} end)
   -- the modules the layer builds, called on inputs
   local function moduleForward(label, make, input, opts)
      opts = opts or {}
      fn(label, opts.names, function() return {input()} end, function(x) return make()(x) end,
         {extra = TENSORS})
   end
   moduleForward('dense(x)', function() return layer():dense({4, 4, 3}, 5) end, t5, {names = {'dense'}})
   moduleForward('conv(x)', function() return layer():conv(3, 4, 3, 1, 1) end, t5, {names = {'conv'}})
   moduleForward('pool(x)', function() return layer():pool(2) end, t5, {names = {'pool'}})
   moduleForward('convTranspose(x)', function() return layer():convTranspose(3, 4, 3, 1, 1) end, t5,
      {names = {'convTranspose'}})
   moduleForward('unpool(x)', function() return layer():unpool(2) end, t5, {names = {'unpool'}})
   moduleForward('dropout(x)', function() return layer():dropout(0.1) end, t5, {names = {'dropout'}})
   moduleForward('delay(x)', function() return layer():delay({3, 4, 4}) end, t5, {names = {'delay'}})
   moduleForward('pspLayer(x)', function() return layer():pspLayer() end, t5, {names = {'pspLayer', 'psp'}})
   moduleForward('pspFilter(x)', function() return layer():pspFilter(2, 4) end, function() return T.rand({2, 1, 4, 4, 8}) end,
      {names = {'pspFilter'}})

   ------------------------------------------------------------------------
   -- Loihi
   ------------------------------------------------------------------------
   fn('snn.loihi', {'loihi'}, function() return {copy(LOIHI), copy(SIM)} end, snn.loihi,
      {extra = {{'vDecay 5000', function() local n = copy(LOIHI) n.vDecay = 5000 return n end},
         {'refDelay 0.5', function() local n = copy(LOIHI) n.refDelay = 0.5 return n end},
         {'wgtExp nan', function() local n = copy(LOIHI) n.wgtExp = 0 / 0 return n end},
         {'vThMant -1', function() local n = copy(LOIHI) n.vThMant = -1 return n end}}})
   layerMethod('spikeLoihi', function() return {t5()} end, {make = loihi, extra = TENSORS})
   layerMethod('spikeLoihiFull', function() return {t5()} end, {make = loihi, extra = TENSORS})
   layerMethod('getVoltage', function() return {t5()} end, {make = loihi, extra = TENSORS})
   fn('loihi:dense', {'dense'}, function() return {{4, 4, 3}, 5, 100, true} end,
      function(...) local sl = loihi() return sl:dense(...) end)
   fn('loihi:conv', {'conv'}, function() return {3, 4, 3, 1, 1, 1, 1, 100, true} end,
      function(...) local sl = loihi() return sl:conv(...) end)
   fn('snn.loihi.export', {'export'}, function()
      local sl = loihi()
      local net = snn.Sequential(sl:dense(4, 3))
      return {net, path('export'), {}}
   end, snn.loihi.export, {extra = OUTPATHS, pool = 'light'})

   ------------------------------------------------------------------------
   -- loss, predict, quantize
   ------------------------------------------------------------------------
   fn('snn.loss', {'loss'}, function() return {netParams()} end, snn.loss,
      {extra = {{'no training', function() local p = netParams() p.training = nil return p end},
         {'unknown error type', function() local p = netParams() p.training.error.type = 'Foo' return p end},
         {'region outside', function() local p = netParams() p.training.error.tgtSpikeRegion.stop = 1e9 return p end}}})
   local function lossMethod(name, args)
      fn('loss:' .. name, {name}, args, function(...) local l = snn.loss(netParams()) return l[name](l, ...) end,
         {extra = TENSORS})
   end
   lossMethod('numSpikes', function() return {spikes5(), T.zeros({2, 3, 4, 4, 1}), 1} end)
   fn('loss:numSpikes(scale)', {'numSpikes'}, function() return {T.ones({})} end,
      function(s) return snn.loss(netParams()):numSpikes(spikes5(), T.zeros({2, 3, 4, 4, 1}), s) end,
      {extra = {must('scale tensor', function() return T.ones({}) end)}})
   lossMethod('spikeTime', function() return {spikes5(), spikes5()} end)
   fn('snn.predict.getClass', {'getClass'}, function() return {spikes5()} end, snn.predict.getClass, {extra = TENSORS})
   fn('snn.quantize', {'quantize'}, function() return {T.rand({3, 3}), 0.5} end, function(...) return snn.quantize(...) end)

   ------------------------------------------------------------------------
   -- modules, optimizers, save/load
   ------------------------------------------------------------------------
   fn('snn.class', {'class'}, function() return {'Foo', snn.Module} end, snn.class)
   fn('snn.Sequential', {'Sequential'}, function() return {layer():dense(4, 3)} end, snn.Sequential)
   fn('Sequential:add', {'add'}, function() return {layer():dense(4, 3)} end,
      function(m) return snn.Sequential():add(m) end)
   fn('Module:to', {'to'}, function() return {'cpu'} end, function(d) return layer():dense(4, 3):to(d) end)
   fn('Module:train', {'train'}, function() return {true} end, function(f) return layer():dense(4, 3):train(f) end)
   fn('snn.weightNorm', {'weightNorm'}, function() return {layer():dense(4, 3), 'weight', 1} end, snn.weightNorm)
   fn('snn.removeWeightNorm', {'removeWeightNorm'}, function() return {snn.weightNorm(layer():dense(4, 3))} end,
      snn.removeWeightNorm)
   fn('snn.updateWeightNorm', {'updateWeightNorm'}, function() return {snn.weightNorm(layer():dense(4, 3))} end,
      snn.updateWeightNorm)
   local function autoParams()
      local p = netParams()
      p.neuron = copy(LOIHI)
      p.layer = {{dim = '2x2x1'}, {dim = 3}}
      return p
   end
   fn('snn.auto.loihi.Network', {'Network', 'loihi'}, function() return {autoParams(), {verbose = false}} end,
      snn.auto.loihi.Network)
   fn('Network:gradFlow', {'gradFlow'}, function() return {path('g-')} end,
      function(p) return snn.auto.loihi.Network(autoParams(), {verbose = false}):gradFlow(p) end,
      {extra = OUTPATHS, pool = 'light'})
   fn('snn.save', {'save'}, function() return {path('s.t7s'), {w = T.ones({2})}} end, snn.save,
      {extra = OUTPATHS, pool = 'light'})
   fn('snn.load', {'load'}, function() return {goodT} end, snn.load, {extra = PATHS})
   fn('Module:save', {'save'}, function() return {path('m.t7s')} end,
      function(p) return layer():dense(4, 3):save(p) end, {extra = OUTPATHS})
   fn('Module:load', {'load'}, function() return {goodT} end,
      function(p) return layer():dense(4, 3):load(p) end, {extra = PATHS})
   local function params() return layer():dense(4, 3):parameters() end
   for _, name in ipairs({'SGD', 'Adam', 'Nadam'}) do
      fn('snn.optim.' .. name, {name}, function() return {params(), {lr = 0.1}} end, snn.optim[name],
         {extra = {{'lr nan', function() return {lr = 0 / 0} end}, {'lr -1', function() return {lr = -1} end},
            {'betas bad', function() return {betas = {2, 0.9}} end}, {'params with numbers', function() return {1, 2} end}}})
      fn('optim.' .. name .. ':step', {'step'}, function() return {function() return 1 end} end,
         function(c) local o = snn.optim[name](params(), {lr = 0.1}) return o:step(c) end)
   end

   ------------------------------------------------------------------------
   -- params
   ------------------------------------------------------------------------
   fn('snn.params', {'params'}, function() return {goodYaml} end, function(p) return snn.params(p) end,
      {extra = PATHS})
   fn('snn.params.parseString', {'parseString', 'params'}, function() return {'a: 1\n'} end, snn.params.parseString,
      {extra = {{'bad yaml', function() return 'a: [1, 2\n' end}, {'alias bomb', function()
         return 'a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
            .. 'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n' end}}})
   fn('snn.params.dump', {'dump', 'params'}, function() return {{a = 1}} end, snn.params.dump,
      {extra = {{'cyclic', function() local t = {} t.self = t return t end}}})
   fn('Params:save', {'save'}, function() return {path('p.yaml')} end,
      function(p) return snn.params(goodYaml):save(p) end, {extra = OUTPATHS})
   fn('Params:print', {'print'}, function() return {'neuron', function() end} end,
      function(k, o) return snn.params(goodYaml):print(k, o) end)
   fn('Params:require', {'require'}, function() return {'neuron', 'theta'} end,
      function(...) return snn.params(goodYaml):require(...) end)

   ------------------------------------------------------------------------
   -- io
   ------------------------------------------------------------------------
   for _, r in ipairs({{'read1Dspikes', good1}, {'read2Dspikes', good2}, {'read3Dspikes', good3},
      {'read1DnumSpikes', goodn}, {'readIdx', idx}}) do
      fn('snn.io.' .. r[1], {r[1]}, function() return {r[2]} end, snn.io[r[1]], {extra = PATHS})
   end
   fn('snn.io.readNpSpikes', {'readNpSpikes'}, function() return {goodNpy, 'xypt', 1e-3} end, snn.io.readNpSpikes,
      {extra = PATHS})
   fn('snn.io.event', {'event'}, function() return {{0, 1}, {0, 1}, {0, 1}, {1, 2}} end, snn.io.event,
      {n = 5, extra = {{'ragged', function() return {1} end}, {'nan list', function() return {0 / 0, 1} end},
         {'huge list', function() return {2 ^ 40, 1} end}}})
   for _, e in ipairs({{'encode1Dspikes', ev1}, {'encode2Dspikes', ev2}, {'encode3Dspikes', ev3}}) do
      fn('snn.io.' .. e[1], {e[1]}, function() return {path('e.bin'), e[2]()} end, snn.io[e[1]], {extra = OUTPATHS})
   end
   fn('snn.io.encodeNpSpikes', {'encodeNpSpikes'}, function() return {path('e.npy'), ev2(), 'xypt', 1e-3} end,
      snn.io.encodeNpSpikes, {extra = OUTPATHS})
   fn('snn.io.encode1DnumSpikes', {'encode1DnumSpikes'}, function() return {path('n.bsn'), {0, 1}, {0, 0}, {5, 5}, {2, 3}} end,
      snn.io.encode1DnumSpikes, {n = 6, extra = OUTPATHS})
   fn('ev:toSpikeTensor', {'toSpikeTensor'}, function() return {T.zeros({2, 4, 4, 8}), 1, false, 'OR'} end,
      function(...) return ev2():toSpikeTensor(...) end, {extra = TENSORS})
   fn('ev:toSpikeTensor(Ts)', {'toSpikeTensor'}, function() return {1} end,
      function(ts) return ev2():toSpikeTensor(T.zeros({2, 4, 4, 8}), ts) end,
      {extra = {must('inf', function() return math.huge end)}})
   fn('ev:toSpikeArray', {'toSpikeArray'}, function() return {1, {2, 4, 4, 8}} end,
      function(...) return ev2():toSpikeArray(...) end)
   fn('snn.io.spikeArrayToEvent', {'spikeArrayToEvent'}, function() return {T.bernoulli({2, 4, 4, 8}, 0.2), 1} end,
      snn.io.spikeArrayToEvent, {extra = TENSORS})
   -- events whose plain fields a script changed: C must not read past the arrays
   local function bentEvent(label, change)
      return must(label, function() local e = ev2() change(e) return e end)
   end
   local BENT = {bentEvent('event with n enlarged', function(e) e.n = 100000 end),
      bentEvent('event with x a Lua table', function(e) e.x = {0, 1, 2} end),
      bentEvent('event with t an int array', function(e) e.t = e.x end),
      bentEvent('event with dim 3', function(e) e.dim = 3 end)}
   fn('bent event: encode2Dspikes', {'encode2Dspikes'}, function() return {ev2()} end,
      function(e) return snn.io.encode2Dspikes(path('bent.bs2'), e) end, {pool = 'none', extra = BENT})
   fn('bent event: encodeNpSpikes', {'encodeNpSpikes'}, function() return {ev2()} end,
      function(e) return snn.io.encodeNpSpikes(path('bent.npy'), e) end, {pool = 'none', extra = BENT})
   fn('bent event: toSpikeTensor', {'toSpikeTensor'}, function() return {ev2()} end,
      function(e) return e:toSpikeTensor(T.zeros({2, 4, 4, 8})) end, {pool = 'none', extra = BENT})
   fn('bent event: toSpikeArray', {'toSpikeArray'}, function() return {ev2()} end,
      function(e) return e:toSpikeArray() end, {pool = 'none', extra = BENT})
   fn('bent event: raster', {'raster'}, function() return {ev2()} end,
      function(e) return snn.io.raster(e, path('bent.png')) end, {pool = 'none', extra = BENT})
   fn('bent event: animTD', {'animTD'}, function() return {ev2()} end,
      function(e) return snn.io.animTD(e, path('bent.gif')) end, {pool = 'none', extra = BENT})
   fn('snn.io.saccade', {'saccade'}, function() return {T.rand({8, 8}):mul_(255), {seed = 1}} end, snn.io.saccade,
      {extra = {{'3-D image', function() return T.rand({1, 8, 8}) end},
         must('nan image', function() return T.full({8, 8}, 0 / 0) end)}})
   fn('snn.io.saccadeToFiles', {'saccadeToFiles'}, function() return {T.rand({2, 8, 8}):mul_(255),
      {path('s1.bs2'), path('s2.bs2')}, {seed = 1}, {1, 2}} end, snn.io.saccadeToFiles,
      {pool = 'light', extra = {{'paths in missing dir', function() return {path('x/1.bs2'), path('x/2.bs2')} end},
         must('seeds tensor', function() return T.fromtable({1, 2}) end, 4)}})
   fn('snn.io.raster', {'raster'}, function() return {T.bernoulli({1, 4, 8}, 0.3), path('r.png'), {}} end,
      snn.io.raster, {extra = OUTPATHS})
   fn('snn.io.raster(events)', {'raster'}, function() return {ev2(), path('r2.png')} end, snn.io.raster,
      {extra = OUTPATHS})
   fn('snn.io.animTD', {'animTD'}, function() return {ev2(), path('a.gif'), {frameRate = 50}} end, snn.io.animTD,
      {extra = OUTPATHS})
   -- (only the events are fuzzed: any other second argument sends the GIF to a temporary file)
   fn('snn.io.showTD', {'showTD'}, function() return {ev2(), {path = path('s.gif'), frameRate = 50}} end,
      function(e, o) return snn.io.showTD(e, o) end, {skip = {[2] = true}})
   fn('snn.io.imageToPng', {'imageToPng'}, function() return {T.rand({8, 8}), path('i.png')} end, snn.io.imageToPng,
      {extra = OUTPATHS})

   ------------------------------------------------------------------------
   -- data, stats, plot, utils
   ------------------------------------------------------------------------
   fn('snn.data.SpikeFiles', {'SpikeFiles'}, function()
      return {{root = dir, list = 'train.txt', shape = {2, 4, 4}, tSample = 8, Ts = 1, classes = 2}}
   end, snn.data.SpikeFiles, {extra = {
      {'missing root', function() return {root = path('nope'), list = 'train.txt', shape = {2, 4, 4}, tSample = 8} end},
      {'bad shape', function() return {root = dir, list = 'train.txt', shape = {2, 0 / 0, 4}, tSample = 8} end},
      {'tSample nan', function() return {root = dir, list = 'train.txt', shape = {2, 4, 4}, tSample = 0 / 0} end},
      {'classes 0', function() return {root = dir, list = 'train.txt', shape = {2, 4, 4}, tSample = 8, classes = 0} end},
      {'bad mode', function() return {root = dir, list = 'train.txt', shape = {2, 4, 4}, tSample = 8, binningMode = 'X'} end}}})
   fn('SpikeFiles:get', {'get'}, function() return {1} end, function(i) return files():get(i) end)
   fn('snn.data.SaccadeImages', {'SaccadeImages'}, function()
      return {{images = T.rand({2, 8, 8}), labels = {0, 1}, cache = path('cache'), shape = {2, 8, 8}, tSample = 8, classes = 2}}
   end, snn.data.SaccadeImages, {extra = {
      {'labels short', function() return {images = T.rand({2, 8, 8}), labels = {0}, cache = path('cache')} end},
      {'cache in a file', function() return {images = T.rand({2, 8, 8}), labels = {0, 1}, cache = corrupt .. '/c'} end}}})
   fn('snn.data.Loader', {'Loader'}, function() return {files(), {batchSize = 1, workers = 0}} end, snn.data.Loader,
      {extra = {{'batchSize 0', function() return {batchSize = 0} end}, {'workers -1', function() return {workers = -1} end},
         {'seed nan', function() return {seed = 0 / 0} end}, {'depth 0', function() return {workers = 1, depth = 0} end}}})
   -- a dataset of the script's own, whose get gives bad samples
   local function customSet(get) return {size = function() return 3 end, get = function(_, i) return get(i) end} end
   fn('Loader over a custom dataset', {'Loader'}, function()
      return {customSet(function() return T.zeros({1, 2, 2, 3}), T.zeros({2, 1, 1, 1}), 1 end)}
   end, function(ds)
      local n = 0
      for _ in snn.data.Loader(ds, {batchSize = 3}):iter() do n = n + 1 end
      return n
   end, {pool = 'none', extra = {
      must('samples of two shapes', function()
         return customSet(function(i) return T.zeros({1, 2, 2, i}), T.zeros({2, 1, 1, 1}), 1 end)
      end),
      must('targets of two shapes', function()
         return customSet(function(i) return T.zeros({1, 2, 2, 3}), T.zeros({i, 1, 1, 1}), 1 end)
      end),
      must('a nil sample', function() return customSet(function() return nil end) end),
      must('a number as the target', function() return customSet(function() return T.zeros({1}), 5, 1 end) end)}})
   fn('Loader:order', {'order'}, function() return {1} end,
      function(e) return snn.data.Loader(files(), {shuffle = true}):order(e) end,
      {extra = {must('nan', function() return 0 / 0 end), must('1.5', function() return 1.5 end),
         must('0', function() return 0 end)}})
   fn('snn.data.jitter', {'jitter'}, function() return {t5(), 1} end, snn.data.jitter, {extra = TENSORS})
   fn('snn.stats', {'stats'}, function() return {{}} end, function(o) return snn.stats(o) end)
   fn('stats:print', {'print'}, function() return {1, 1, 1} end,
      function(...) local s = snn.stats() s:update() return s:print(...) end, {n = 5})
   fn('stats:setEpochSamples', {'setEpochSamples'}, function() return {10, 10} end,
      function(...) return snn.stats():setEpochSamples(...) end,
      {extra = {must('nan', function() return 0 / 0 end), must('tensor', function() return T.ones({2}) end)}})
   fn('stats:save', {'save'}, function() return {path('st-')} end,
      function(p) local s = snn.stats() s:update() return s:save(p) end, {extra = OUTPATHS})
   fn('stats:load', {'load'}, function() return {statsPrefix, 1, 1} end,
      function(...) return snn.stats():load(...) end, {extra = PATHS})
   fn('stats:plot', {'plot'}, function() return {{path = path('pl-')}} end,
      function(o) local s = snn.stats() s:update() return s:plot(o) end, {pool = 'light',
         extra = {{'path in missing dir', function() return {path = path('nodir/x/pl-')} end}}})
   fn('snn.plot.lines', {'lines'}, function() return {{{name = 'a', values = {1, 2, 3}}}, {output = path('ln')}} end,
      snn.plot.lines, {pool = 'light', extra = {{'output in missing dir', function() return {output = path('nodir/x/ln')} end},
         {'values strings', function() return {{name = 'a', values = {'x', 'y'}}} end}}})
   fn('snn.plot.learningCurves', {'learningCurves'}, function()
      local s = snn.stats() s:update() return {s, path('lc-'), 'title'}
   end, snn.plot.learningCurves, {pool = 'light'})
   fn('snn.utils.correct', {'correct'}, function() return {spikes5(), {1, 2}} end, snn.utils.correct,
      {extra = {must('labels strings', function() return {'a', 'b'} end),
         must('labels fractional', function() return {1.5, 2} end)}})
   fn('snn.utils.evaluate', {'evaluate', 'correct'}, function()
      return {layer():dense({4, 4, 2}, 2), snn.data.Loader(files()), nil}
   end, snn.utils.evaluate)
   fn('snn.utils.parseOptions', {'parseOptions', 'options'}, function() return {{'--n', '3'}, {n = {1, 'count'}}} end,
      snn.utils.parseOptions)
   fn('snn.utils.mkdir', {'mkdir'}, function() return {path('mk/a/b')} end, snn.utils.mkdir,
      {extra = {{'under a file', function() return corrupt .. '/x' end}}})
   fn('snn.utils.writeFile', {'writeFile'}, function() return {path('w.txt'), 'text'} end, snn.utils.writeFile,
      {extra = OUTPATHS})
   fn('snn.utils.writeFiles', {'writeFiles'}, function() return {{{path('w1.txt'), 'a'}, {path('w2.txt'), 'b'}}} end,
      snn.utils.writeFiles, {extra = {{'one in missing dir', function() return {{path('w3.txt'), 'a'}, {path('nodir/w4.txt'), 'b'}} end}}})
   fn('snn.utils.now', {'now'}, function() return {1} end, snn.utils.now)
   fn('snn.utils.median', {'median'}, function() return {{3, 1, 2}} end, snn.utils.median,
      {extra = {{'strings', function() return {'a', 1} end}}})
   fn('snn.utils.timeit', {'timeit'}, function() return {function() end, 2, 1} end, snn.utils.timeit)
   fn('snn.utils.exists', {'exists'}, function() return {good2} end, snn.utils.exists)
   fn('snn.plot.run', {'plot', 'run'}, function() return {'set terminal dumb\n', {}} end, snn.plot.run, {pool = 'light'})
   fn('snn.utils.json', {'json'}, function() return {{a = 1}} end, snn.utils.json,
      {extra = {{'cyclic', function() local t = {} t.self = t return t end}, {'nan', function() return {a = 0 / 0} end}}})
   ------------------------------------------------------------------------
   -- the readers on damaged files: every truncation, every byte inverted,
   -- garbage appended (written once here, read by each call)
   ------------------------------------------------------------------------
   local function slurp(p) local f = assert(io.open(p, 'rb')) local s = f:read('*a') f:close() return s end
   local bigT = path('big.t7s'); snn.save(bigT, {a = T.ones({2, 3}), bb = T.zeros({4}), c = T.ones({1, 1, 2})})
   local gzIdx = path('good.idx.gz')
   assert(os.execute('gzip -c ' .. idx .. ' > ' .. gzIdx) == 0)
   local nvariant = 0
   local function damaged(good)
      local data, list = slurp(good), {}
      local function add(label, bytes)
         nvariant = nvariant + 1
         local p = path('damaged-' .. nvariant .. good:match('%.[%w.]+$'))
         writeFile(p, bytes)
         list[#list + 1] = {label, function() return p end}
      end
      for n = 0, #data - 1 do add('first ' .. n .. ' bytes', data:sub(1, n)) end
      for i = 1, #data do
         add('byte ' .. i .. ' inverted', data:sub(1, i - 1) .. string.char(255 - data:byte(i)) .. data:sub(i + 1))
      end
      add('garbage appended', data .. '\255\0\1garbage')
      return list
   end
   for _, r in ipairs({{'read1Dspikes', good1}, {'read2Dspikes', good2}, {'read3Dspikes', good3},
      {'read1DnumSpikes', goodn}, {'readNpSpikes', goodNpy}, {'readIdx', idx}, {'readIdx', gzIdx}}) do
      fn('damaged ' .. r[1], {r[1]}, function() return {r[2]} end, snn.io[r[1]], {pool = 'none', extra = damaged(r[2])})
   end
   -- damage a reader has to notice
   local gz = slurp(gzIdx)
   local npy = slurp(goodNpy)
   fn('damaged readIdx (marked)', {'readIdx'}, function() return {idx} end, snn.io.readIdx, {pool = 'none', extra = {
      must('gzip stream cut inside its trailer', function() return writeFile(path('cut.idx.gz'), gz:sub(1, #gz - 4)) end),
      must('bytes past the declared data', function() return writeFile(path('long.idx'), slurp(idx) .. '\0') end)}})
   fn('damaged readNpSpikes (marked)', {'readNpSpikes'}, function() return {goodNpy} end, snn.io.readNpSpikes,
      {pool = 'none', extra = {
         must('fortran_order garbled', function() return writeFile(path('fo.npy'), (npy:gsub('False', 'Fxlse'))) end),
         must('header not a dict', function() return writeFile(path('nodict.npy'), (npy:gsub('{', '['))) end)}})
   fn('damaged snn.load', {'load'}, function() return {bigT} end, snn.load, {pool = 'none', extra = damaged(bigT)})
   fn('damaged Module:load', {'load'}, function() return {goodT} end,
      function(p) return layer():dense(2, 2):load(p) end, {pool = 'none', extra = damaged(goodT)})
   fn('damaged snn.params', {'params'}, function() return {goodYaml} end, function(p) return snn.params(p) end,
      {pool = 'none', extra = damaged(goodYaml)})
   fn('damaged stats:load', {'load'}, function() return {statsPrefix} end, function(p) return snn.stats():load(p) end,
      {pool = 'none', extra = (function()
         local list = {}
         for _, v in ipairs(damaged(statsPrefix .. 'loss.txt')) do
            list[#list + 1] = {v[1], function()
               local p = v[2]()
               local pre = p:gsub('%.txt$', '') .. '-'
               writeFile(pre .. 'loss.txt', slurp(p))
               writeFile(pre .. 'accuracy.txt', slurp(statsPrefix .. 'accuracy.txt'))
               return pre
            end}
         end
         return list
      end)()})
   -- a damaged sample read by the loader's C worker threads
   fn('damaged sample in Loader(workers = 2)', {'Loader', 'SpikeFiles', 'get'}, function() return {good2} end,
      function(p)
         local ds = files()
         ds.paths[2] = p
         local out = {}
         for x in snn.data.Loader(ds, {batchSize = 2, workers = 2}):iter() do out[#out + 1] = x end
         return out
      end, {pool = 'none', extra = damaged(good2)})
   return C
end
