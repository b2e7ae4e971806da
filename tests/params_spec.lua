-- snn.params: YAML through libyaml with PyYAML's YAML 1.1 typing (SPEC.md 2)
local snn = require 'slayer'
local H = require 'support.helpers'

local function tmpfile(text)
   local path = os.tmpname()
   local f = io.open(path, 'w')
   f:write(text)
   f:close()
   return path
end

describe('snn.params', function()
   it('types plain scalars as PyYAML does', function()
      local p = snn.params(tmpfile([[
a: 1.0
b: 0.1
c: .5
d: 300
e: 1e-8
f: 1.0e-8
g: 1.0e8
h: yes
i: Off
j: 34x34x2
k: 16c5z
l: 010
m: 0x1F
n: 1_000
o: '10'
p: "true"
q: ~
r: -.5
s: 1:30
t: !!str 12
u: !!float 3
]]))
      assert.are.equal(1.0, p.a)
      assert.are.equal(0.1, p.b)
      assert.are.equal(0.5, p.c)
      assert.are.equal(300, p.d)
      assert.are.equal('1e-8', p.e)
      assert.are.equal(1e-8, p.f)
      assert.are.equal('1.0e8', p.g)
      assert.are.equal(true, p.h)
      assert.are.equal(false, p.i)
      assert.are.equal('34x34x2', p.j)
      assert.are.equal('16c5z', p.k)
      assert.are.equal(8, p.l)
      assert.are.equal(31, p.m)
      assert.are.equal(1000, p.n)
      assert.are.equal('10', p.o)
      assert.are.equal('true', p.p)
      assert.is_nil(p.q)
      assert.are.equal('-.5', p.r)
      assert.are.equal(90, p.s)
      assert.are.equal('12', p.t)
      assert.are.equal(3, p.u)
   end)

   it('reads a network file with nested sections, lists and boolean keys', function()
      local p = snn.params(tmpfile([[
simulation:
    Ts: 1.0
    tSample: 300
neuron:
    type:     SRMALPHA
    theta:    10
layer:
    - {dim: 34x34x2, wScale: 1}
    - {dim: 512}
training:
    error:
        type: NumSpikes
        tgtSpikeRegion: {start: 0, stop: 300}
        tgtSpikeCount: {true: 60, false: 10}
    path:
        in: &base data/
        out: *base
]]))
      assert.are.equal(10, p.neuron.theta)
      assert.are.equal(1, p['simulation']['Ts'])
      assert.are.equal('34x34x2', p.layer[1].dim)
      assert.are.equal(512, p.layer[2].dim)
      assert.are.equal(60, p.training.error.tgtSpikeCount[true])
      assert.are.equal(10, p.training.error.tgtSpikeCount[false])
      assert.are.equal('data/', p.training.path.out)
      assert.are.same({'dim', 'wScale'}, (function() local k = {} for key in pairs(p.layer[1]) do k[#k + 1] = key end table.sort(k) return k end)())
   end)

   it('saves YAML that reads back equal, keys sorted, through a temporary file', function()
      local src = snn.params(tmpfile([[
neuron: {type: SRMALPHA, theta: 10, tauSr: 10.0, scaleRho: 0.25}
simulation: {Ts: 0.1, tSample: 50}
training: {error: {tgtSpikeCount: {true: 60, false: 10}, type: NumSpikes}}
strings: ['1e-8', 'yes', 'a: b', '', ' padded', "it's"]
numbers: [1.0e-8, 1.5e+20, -3, 0.1]
]]))
      local out = os.tmpname()
      src:save(out)
      assert.is_nil(io.open(out .. '.tmp'))
      local back = snn.params(out)
      assert.are.same(src.neuron, back.neuron)
      assert.are.same(src.simulation, back.simulation)
      assert.are.same(src.training, back.training)
      assert.are.same({'1e-8', 'yes', 'a: b', '', ' padded', "it's"}, back.strings)
      assert.are.same({1e-8, 1.5e20, -3, 0.1}, back.numbers)
      local text = io.open(out):read('*a')
      assert.truthy(text:find('^neuron:\n  scaleRho: 0.25\n  tauSr: 10.0\n  theta: 10\n  type: SRMALPHA\nnumbers:'))
      os.remove(out)
   end)

   it('reports a missing file, and a syntax error with line and column', function()
      local ok, err = pcall(snn.params, '/nonexistent/net.yaml')
      assert.is_false(ok)
      assert.truthy(err:find("cannot open '/nonexistent/net.yaml'"))
      ok, err = pcall(snn.params, tmpfile('a: 1\nb: [1, 2\nc: 3\n'))
      assert.is_false(ok)
      assert.truthy(err:find('syntax error') and err:find('line %d+, column %d+'), err)
   end)

   it('refuses a file whose top level is a list or a single value, and takes an empty one', function()
      local path = tmpfile('- simulation\n- neuron\n')
      local ok, err = pcall(snn.params, path)
      assert.is_false(ok)
      assert.truthy(err:find("params: '" .. path .. "' holds a list at its top level", 1, true), err)
      ok, err = pcall(snn.params, tmpfile('simulation\n'))
      assert.is_false(ok)
      assert.truthy(err:find('holds a single value at its top level', 1, true), err)
      assert.are.equal(nil, next(snn.params(tmpfile(''))))
      assert.are.equal(nil, next(snn.params(tmpfile('# nothing yet\n'))))
      -- parseString still reads any document
      assert.are.same({'a', 'b'}, snn.params.parseString('- a\n- b\n'))
   end)

   it('merges << keys (one mapping or a list, explicit keys and earlier mappings win), as PyYAML', function()
      local t = snn.params.parseString('base: &b {x: 1, z: 3}\nm:\n  <<: *b\n  y: 2\n  z: 4\n')
      assert.are.same({x = 1, y = 2, z = 4}, t.m)
      assert.are.same({x = 1, z = 3}, t.base)
      t = snn.params.parseString('a: &a {p: 1, s: 1}\nb: &b {q: 2, s: 2}\nm:\n  <<: [*a, *b]\n  r: 3\n')
      assert.are.same({p = 1, q = 2, r = 3, s = 1}, t.m)
      -- a quoted '<<' is an ordinary key
      assert.are.equal(5, snn.params.parseString("'<<': 5\n")['<<'])
   end)

   it('writes every UTF-8 string so that it reads back the same, and refuses what YAML cannot hold', function()
      local strings = {'a\1b', 'tab\there', 'x\127y', 'nel\194\133x', 'ls\226\128\168x', 'ps\226\128\169x',
         'back\\slash "q"\n', '<<', "it's", '\195\169 \195\188', ' lead', 'yes', '10', '1e-8'}
      for _, v in ipairs(strings) do
         local back = snn.params.parseString(snn.params.dump({k = v, [v] = 1}))
         assert.are.equal(v, back.k)
         assert.are.equal(1, back[v])
      end
      -- a '<<' key stays a key, not a merge
      local back = snn.params.parseString(snn.params.dump({m = {['<<'] = {x = 1}, y = 2}}))
      assert.are.same({['<<'] = {x = 1}, y = 2}, back.m)
      local ok, err = pcall(snn.params.dump, {k = 'bad\255'})
      assert.truthy(not ok and err:find('is not UTF-8 text', 1, true), err)
      local path = os.tmpname()
      ok, err = pcall(snn.params{[string.rep('k', 2000)] = 1}.save, snn.params{[string.rep('k', 2000)] = 1}, path)
      assert.truthy(not ok and err:find('params:save: cannot write a key of 2000 characters', 1, true), err)
      os.remove(path)
   end)

   it('refuses aliases that expand past maxNodes, aliases inside their own node, and NaN keys', function()
      local bomb, prev = 'a: &a [x, x, x, x, x, x, x, x, x, x]\n', 'a'
      for k = 1, 6 do -- 10^7 nodes in under 1 kB
         local name = 'l' .. k
         bomb = bomb .. name .. ': &' .. name .. ' [' .. string.rep('*' .. prev .. ', ', 9) .. '*' .. prev .. ']\n'
         prev = name
      end
      local ok, err = pcall(snn.params.parseString, bomb)
      assert.is_false(ok)
      assert.truthy(err:find('more than 1000000 nodes once its aliases are expanded', 1, true), err)
      -- the same document under a higher limit reads, sharing the aliased tables
      local saved = snn.params.maxNodes
      snn.params.maxNodes = 2e7
      ok, err = pcall(snn.params.parseString, bomb)
      snn.params.maxNodes = saved
      assert.is_true(ok, err)
      assert.are.equal(err.l5, err.l6[10])
      for _, doc in ipairs({'a: &a {b: *a}\n', 'a: &a [1, [*a]]\n'}) do
         ok, err = pcall(snn.params.parseString, doc)
         assert.is_false(ok)
         assert.truthy(err:find("alias '*a' refers to a node that contains it", 1, true), err)
      end
      ok, err = pcall(snn.params.parseString, '.nan: 1\n')
      assert.is_false(ok)
      assert.truthy(err:find('mapping key is NaN', 1, true), err)
   end)

   it('names a missing required key when a layer is built from it', function()
      local p = snn.params(tmpfile('simulation: {Ts: 1, tSample: 300}\nneuron: {type: SRMALPHA, theta: 10}\n'))
      local ok, err = pcall(snn.layer, p.neuron, p.simulation)
      assert.is_false(ok)
      assert.truthy(err:find("neuron descriptor has no 'tauSr'"))
      ok, err = pcall(p.require, p, 'training', 'error')
      assert.truthy(err:find("missing required key 'training'"))
   end)

   it('reads the Oxford example parameters from the shared data', function()
      local dir = assert(H.dataDir(), 'shared data not found (set SLAYER_DATA)')
      local p = snn.params(dir .. '/oxford/oxford.yaml')
      assert.are.equal(1900, p.simulation.tSample)
      assert.are.equal('SpikeTime', p.training.error.type)
      assert.are.equal(256, p.layer[2].dim)
      local sl = snn.layer(p.neuron, p.simulation)
      assert.are.equal(77, sl.srmKernel:numel())
   end)

   it('prints sections as the reference printConfig', function()
      local p = snn.params{neuron = {theta = 10, type = 'SRMALPHA'}}
      local text = p:print('neuron', function() end)
      assert.are.equal('neuron:\n    theta      : 10\n    type       : SRMALPHA', text)
   end)

   -- printConfig(obj, pre): a dict in its (file) order; "pre + key + ' :'" and
   -- recursion with pre + 4 spaces for a dict or list value, else
   -- "pre + '{:10s} : {}'.format(str(key), value)"; a list item as
   -- "pre + '- {}'.format(item)" (str: no quotes for a string, a dict or list
   -- item as Python writes it); print(key) writes "key:" and then the value
   -- with pre = 4 spaces.  str() of True is 'True', of the float 1.0 is '1.0'.
   it('prints as the reference printConfig: file order, Python spellings of values', function()
      local p = snn.params(tmpfile([[
simulation:
    Ts: 1.0
    tSample: 300
neuron:
    type: SRMALPHA
    theta: 10
    tauRho: 0.1
    scaleRho: 1.5e-05
layer:
    - {dim: 34x34x2, wScale: 1.0, pad: [1, 2], ok: yes}
    - 512
    - abc
    - 2.0
training:
    error:
        type: NumSpikes
        tgtSpikeCount: {true: 60, false: 10}
    flag: on
seed: 5
]]))
      local quiet = function() end
      assert.are.equal(table.concat({
         'simulation :',
         '    Ts         : 1.0',
         '    tSample    : 300',
         'neuron :',
         '    type       : SRMALPHA',
         '    theta      : 10',
         '    tauRho     : 0.1',
         '    scaleRho   : 1.5e-05',
         'layer :',
         "    - {'dim': '34x34x2', 'wScale': 1.0, 'pad': [1, 2], 'ok': True}",
         '    - 512',
         '    - abc',
         '    - 2.0',
         'training :',
         '    error :',
         '        type       : NumSpikes',
         '        tgtSpikeCount :',
         '            True       : 60',
         '            False      : 10',
         '    flag       : True',
         'seed       : 5'}, '\n'), p:print(nil, quiet))
      assert.are.equal('simulation:\n    Ts         : 1.0\n    tSample    : 300', p:print('simulation', quiet))
      assert.are.equal('seed:\n    5', p:print('seed', quiet))
      assert.truthy(H.errorOf(function() p:print('save', quiet) end):find("params:print: no section 'save'", 1, true))
      local q = snn.params(tmpfile('2: two\n1.5: x\nz: {3: 3.0}\n'))
      assert.are.equal('2          : two\n1.5        : x\nz :\n    3          : 3.0', q:print(nil, quiet))
      -- a value assigned in Lua is a plain number again
      p.simulation.Ts = 2
      assert.are.equal('simulation:\n    Ts         : 2\n    tSample    : 300', p:print('simulation', quiet))
   end)

   it('saves floats as PyYAML dumps them (1.0, 1.0e-08), integers without a dot', function()
      local p = snn.params(tmpfile('a: 1.0\nb: 300\nc: !!float 3\nd: 1.0e-8\ne: [2.0, 2]\nf: 1.0e+16\n'))
      local out = os.tmpname()
      p:save(out)
      local text = io.open(out):read('*a')
      os.remove(out)
      assert.are.equal('a: 1.0\nb: 300\nc: 3.0\nd: 1.0e-08\ne:\n- 2.0\n- 2\nf: 1.0e+16\n', text)
   end)
end)
