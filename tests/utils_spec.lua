-- snn.utils: folders and files written through a temporary
local snn = require 'slayer'
local U = snn.utils
local H = require 'support.helpers'

local function tmpdir()
   local d = os.tmpname()
   os.remove(d)
   return d
end

local function isDir(path)
   local f = io.open(path .. '/.', 'rb')
   if f then f:close() end
   return f ~= nil
end

describe('reference aliases', function()
   it('has snn.utils.quantize, stats, optim and printConfig, as the reference\'s src/utils.py', function()
      local T = snn.tensor
      assert.are.same({-4, 0, 4}, snn.utils.quantize(T.fromtable({-3, 1, 3}), 2):totable())
      assert.are.equal(snn.stats, snn.utils.stats)
      assert.are.equal(snn.optim.Nadam, snn.utils.optim.Nadam)
      local lines = {}
      snn.utils.printConfig({neuron = {theta = 10}, Ts = 1}, function(s) lines[#lines + 1] = s end)
      assert.are.equal('Ts         : 1\nneuron :\n    theta      : 10', lines[1])
      -- a tree read from YAML keeps its file order and float spellings
      local p = snn.params.parseString('zeta: 1.0\nalpha:\n    b: 2\n    a: 3.0\n')
      lines = {}
      snn.utils.printConfig(p, function(s) lines[#lines + 1] = s end)
      assert.are.equal('zeta       : 1.0\nalpha :\n    b          : 2\n    a          : 3.0', lines[1])
   end)
end)

describe('mkdir', function()
   it('creates a folder and its parents, accepts an existing one, and needs no shell', function()
      local root = tmpdir()
      local deep = root .. "/a b/it's;x/c"
      assert.are.equal(deep, U.mkdir(deep))
      assert.is_true(isDir(deep))
      assert.are.equal(deep, U.mkdir(deep))
      assert.are.equal(root .. '/', U.mkdir(root .. '/'))
      os.execute("rm -rf '" .. root .. "'")
   end)

   it('raises an error naming the part that cannot be created (it used to return quietly)', function()
      local file = os.tmpname()
      local ok, err = pcall(U.mkdir, file .. '/sub/dir')
      assert.is_false(ok)
      assert.truthy(err:find("mkdir: cannot create '" .. file .. "': it exists and is not a folder", 1, true), err)
      os.remove(file)
   end)

   it('refuses a path that is not a string (mkdir(nil) used to create a folder called nil)', function()
      for _, bad in ipairs({false, 5, ''}) do
         local ok, err = pcall(U.mkdir, bad or nil)
         assert.is_false(ok)
         assert.truthy(err:find('mkdir: expected a folder path', 1, true), err)
      end
      assert.is_false(isDir('nil'))
   end)
end)

describe('writeFile', function()
   it('writes the text through path.tmp and leaves no temporary on failure', function()
      local path = os.tmpname()
      U.writeFile(path, 'hello\n')
      local f = io.open(path, 'rb')
      assert.are.equal('hello\n', f:read('*a'))
      f:close()
      assert.is_nil(io.open(path .. '.tmp', 'rb'))
      -- text nil: an error before anything is opened (path.tmp used to stay behind)
      local ok, err = pcall(U.writeFile, path, nil)
      assert.is_false(ok)
      assert.truthy(err:find('writeFile: expected the text to write', 1, true), err)
      assert.is_nil(io.open(path .. '.tmp', 'rb'))
      f = io.open(path, 'rb')
      assert.are.equal('hello\n', f:read('*a'))
      f:close()
      -- a folder in the way of the rename: the error names the path, the temporary is removed
      local dir = tmpdir()
      U.mkdir(dir .. '/inner')
      ok, err = pcall(U.writeFile, dir .. '/inner', 'x')
      assert.is_false(ok)
      assert.truthy(err:find("writeFile: writing '" .. dir .. "/inner' failed", 1, true), err)
      assert.is_nil(io.open(dir .. '/inner.tmp', 'rb'))
      ok, err = pcall(U.writeFile, nil, 'x')
      assert.truthy(not ok and err:find('writeFile: expected a file path', 1, true), err)
      ok, err = pcall(U.writeFile, dir .. '/missing/x.txt', 'x')
      assert.truthy(not ok and err:find('writeFile: cannot open', 1, true), err)
      os.execute("rm -rf '" .. dir .. "'")
      os.remove(path)
   end)

   it('correct counts matches against labels given as a list or a tensor, and checks the count', function()
      local T = snn.tensor
      local out = T.zeros({3, 4, 1, 1, 5})
      out:narrow(2, 2, 1):fill(1) -- every sample predicts class 2
      assert.are.equal(2, U.correct(out, {2, 2, 1}))
      assert.are.equal(2, U.correct(out, T.fromtable({2, 2, 1}, {3})))
      local ok, err = pcall(U.correct, out, {2})
      assert.truthy(not ok and err:find('correct: 1 labels for a batch of 3 outputs', 1, true), err)
      ok, err = pcall(U.correct, out, 2)
      assert.truthy(not ok and err:find('correct: expected labels as a list or a tensor', 1, true), err)
      -- a label outside the classes (a dataset's "no class" mark, which the
      -- loaders pass through) is never right; a fractional one is an error
      assert.are.equal(1, U.correct(out, {2, 0, -1}))
      ok, err = pcall(U.correct, out, {2, 1.5, 2})
      assert.truthy(not ok and err:find('correct: label 2 is 1.5, expected a whole-number class', 1, true), err)
   end)

   it('writeFiles writes every file or none, from strings or chunk producers', function()
      local dir = tmpdir()
      U.mkdir(dir)
      local read = H.readFile
      U.writeFiles({{dir .. '/a.txt', 'A'}, {dir .. '/b.txt', function(emit) emit('B1'); emit('B2') end}})
      assert.are.equal('A', read(dir .. '/a.txt'))
      assert.are.equal('B1B2', read(dir .. '/b.txt'))
      -- the second file's producer fails: neither file changes, no temporary stays
      local ok, err = pcall(U.writeFiles, {{dir .. '/a.txt', 'new A'},
         {dir .. '/b.txt', function(emit) emit('x'); error('no more data', 0) end}}, 'demo')
      assert.is_false(ok)
      assert.truthy(err:find("demo: writing '" .. dir .. "/b.txt' failed: no more data", 1, true), err)
      assert.are.equal('A', read(dir .. '/a.txt'))
      assert.are.equal('B1B2', read(dir .. '/b.txt'))
      assert.is_nil(read(dir .. '/a.txt.tmp'))
      assert.is_nil(read(dir .. '/b.txt.tmp'))
      ok, err = pcall(U.writeFiles, {{dir .. '/c.txt', true}})
      assert.truthy(not ok and err:find('writeFiles: file 1 has text of type boolean', 1, true), err)
      os.execute("rm -rf '" .. dir .. "'")
   end)
end)

describe('options', function()
   local spec = {
      epochs = {90, 'training epochs', integer = true, min = 1},
      lr = {0.01, 'learning rate', above = 0},
      dropout = {0.1, 'dropout', min = 0, below = 1},
      train = {0, 'samples (0: all)', integer = true, min = 0},
      seed = {1, 'seed', integer = true, min = 0, max = 2 ^ 53},
      device = {'cpu', 'device', choices = {'cpu', 'cuda'}},
      batch = {nil, 'batch size', type = 'number', integer = true, min = 1},
      n = {'512', 'sizes', check = function(v) return not v:match('^%d+[%d,]*$') and 'sizes like 512,4096' or nil end},
      shuffle = {true, 'shuffle'},
      out = {'out', 'folder'},
   }
   local function fails(args, message, s)
      local opt, err = U.parseOptions(args, s or spec)
      assert.is_nil(opt, 'accepted ' .. table.concat(args, ' '))
      assert.are.equal(message, err)
   end

   it('converts and checks values, --name value or --name=value', function()
      local opt = U.parseOptions({'--epochs', '3', '--lr=0.5', '--device', 'cuda', '--batch', '7', '--out', '-x'}, spec)
      assert.are.same({epochs = 3, lr = 0.5, dropout = 0.1, train = 0, seed = 1, device = 'cuda', batch = 7, n = '512',
         shuffle = true, out = '-x'}, opt)
      assert.are.equal(2 ^ 53, U.parseOptions({'--seed', '9007199254740992'}, spec).seed)
      assert.are.equal(0, U.parseOptions({'--dropout', '0'}, spec).dropout)
   end)

   it('refuses numbers out of range, fractions, nan and inf, naming the option and the value', function()
      -- these used to pass: -1, 0 or nan epochs trained nothing, -5 samples meant all
      fails({'--epochs', '-1'}, '--epochs expects a whole number >= 1, got -1')
      fails({'--epochs', '0'}, '--epochs expects a whole number >= 1, got 0')
      fails({'--epochs', 'nan'}, '--epochs expects a whole number >= 1, got nan')
      fails({'--epochs', '1.5'}, '--epochs expects a whole number >= 1, got 1.5')
      fails({'--epochs='}, "--epochs expects a whole number >= 1, got ''")
      fails({'--train', '-5'}, '--train expects a whole number >= 0, got -5')
      fails({'--lr', 'inf'}, '--lr expects a number > 0, got inf')
      fails({'--lr', '0'}, '--lr expects a number > 0, got 0')
      fails({'--dropout', '2'}, '--dropout expects a number >= 0 and < 1, got 2')
      fails({'--seed', 'nan'}, '--seed expects a whole number from 0 to 9007199254740992, got nan')
      fails({'--batch', 'x'}, '--batch expects a whole number >= 1, got x')
      fails({'--device', 'tpu'}, '--device expects one of cpu, cuda, got tpu')
      fails({'--n', 'abc'}, '--n expects sizes like 512,4096, got abc')
   end)

   it('takes true/false after a flag and says what a flag expects (it used to say "unknown option maybe")', function()
      assert.is_false(U.parseOptions({'--shuffle', 'false'}, spec).shuffle)
      assert.is_false(U.parseOptions({'--shuffle=no'}, spec).shuffle)
      assert.is_true(U.parseOptions({'--shuffle', '--epochs', '2'}, spec).shuffle)
      fails({'--shuffle', 'maybe'}, '--shuffle expects true or false (or nothing), got maybe')
      fails({'--shuffle=maybe'}, '--shuffle expects true or false, got maybe') -- used to mean false
   end)

   it('refuses unknown options, missing values and stray arguments', function()
      fails({'--bogus', '1'}, 'unknown option --bogus')
      fails({'-x'}, 'unknown option -x')
      fails({'--out'}, '--out needs a value')
      fails({'--device', '--epochs', '2'}, '--device needs a value') -- `--only` with no value used to run everything
      fails({'stray'}, 'unexpected argument stray')
   end)

   it('fills positional arguments from the array part of the spec and asks for a missing one', function()
      local s = {{'checkpoint', 'written by train.lua'}, test = {0, 'samples', integer = true, min = 0}}
      assert.are.same({checkpoint = 'c.t7s', test = 5}, U.parseOptions({'--test', '5', 'c.t7s'}, s))
      fails({'--test', '5'}, 'missing <checkpoint> (written by train.lua)', s)
      fails({'a', 'b'}, 'unexpected argument b', s)
   end)

   it('reports --help (anywhere) as false, before checking values', function()
      assert.is_false(U.parseOptions({'--help'}, spec))
      assert.is_false(U.parseOptions({'--epochs', '-1', '-h'}, {{'checkpoint'}, epochs = spec.epochs}))
   end)

   it('options() prints "<script>: <message>" and the usage line, exits 2 without a traceback; --help exits 0', function()
      local script = os.tmpname()
      local f = io.open(script, 'w')
      f:write("package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path\n",
         "local opt = require('slayer.utils').options(arg, {{'checkpoint', 'a checkpoint'}, ",
         "epochs = {2, 'training epochs', integer = true, min = 1}}, 'luajit demo.lua <checkpoint> [options]')\n",
         "print('ran with ' .. opt.epochs)\n")
      f:close()
      local function run(args)
         local p = io.popen('luajit ' .. script .. ' ' .. args .. ' 2>&1; echo "__rc=$?"')
         local out = p:read('*a')
         p:close()
         return tonumber(out:match('__rc=(%d+)')), out
      end
      local rc, out = run('c --epochs 0')
      assert.are.equal(2, rc, out)
      assert.truthy(out:find('demo.lua: --epochs expects a whole number >= 1, got 0\n'
         .. 'usage: luajit demo.lua <checkpoint> [options]', 1, true), out)
      assert.is_nil(out:find('traceback'), out)
      assert.is_nil(out:find('ran with'), out)
      rc, out = run('--help')
      assert.are.equal(0, rc, out)
      assert.truthy(out:find('<checkpoint>%s+a checkpoint'), out)
      assert.truthy(out:find('%-%-epochs <number>%s+training epochs %(default: 2%)'), out)
      rc, out = run('c --epochs 3')
      assert.are.equal(0, rc, out)
      assert.truthy(out:find('ran with 3', 1, true), out)
      os.remove(script)
   end)
end)
