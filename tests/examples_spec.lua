-- Smoke tests of the examples: tiny configurations (2 epochs, a few samples)
-- that must train (the loss falls), write their files, end with a RESULT
-- line, and whose eval.lua reproduces the reported test accuracy.
local H = require 'support.helpers'

local DATA = assert(H.dataDir(), 'shared data not found: run from the checkout next to ../shared or set SLAYER_DATA')

local function run(cmd)
   local p = io.popen('(' .. cmd .. ') 2>&1; echo "__rc=$?"')
   local out = p:read('*a')
   p:close()
   local body, rc = out:match('^(.*)__rc=(%d+)%s*$')
   return tonumber(rc), body
end

-- numeric fields of the RESULT json line
local function result(out)
   local line = out:match('RESULT (%b{})')
   assert(line, 'no RESULT line in:\n' .. out)
   local r = {}
   for k, v in line:gmatch('"([%w_]+)":([%-%d%.eE+]+)') do r[k] = tonumber(v) end
   for k, v in line:gmatch('"([%w_]+)":"([^"]*)"') do r[k] = v end
   return r
end

local function lossColumn(path)
   local rows = {}
   for line in io.lines(path) do
      local a = line:match('^%s*([%d%.eE+%-]+)%s')
      if a then rows[#rows + 1] = tonumber(a) end
   end
   return rows
end

local function exists(path)
   local f = io.open(path, 'rb')
   if f then f:close() return true end
   return false
end

local function tmpdir()
   local d = os.tmpname()
   os.remove(d)
   return d
end

describe('examples', function()
   it('nmnist-mlp trains, writes its files and eval reproduces its test accuracy', function()
      local out = tmpdir()
      local rc, text = run('luajit examples/nmnist-mlp/train.lua --epochs 2 --train 96 --test 24 --threads 2 --out ' .. out
         .. ' --data ' .. DATA .. '/nmnist-small')
      assert.are.equal(0, rc, text)
      local r = result(text)
      assert.are.equal(2, r.epochs)
      local loss = lossColumn(out .. '/loss.txt')
      assert.are.equal(2, #loss)
      assert.is_true(loss[2] < loss[1], 'training loss should fall: ' .. loss[1] .. ' -> ' .. loss[2])
      for _, f in ipairs({'checkpoint.t7s', 'loss.png', 'accuracy.png', 'accuracy.txt', 'output-raster.png'}) do
         assert.is_true(exists(out .. '/' .. f), f)
      end
      local rc2, text2 = run('luajit examples/nmnist-mlp/eval.lua ' .. out .. '/checkpoint.t7s --test 24 --threads 2 --data '
         .. DATA .. '/nmnist-small')
      assert.are.equal(0, rc2, text2)
      assert.are.equal(r.testAccuracy, result(text2).testAccuracy)
      assert.are.equal(r.testLoss, result(text2).testLoss)
      os.execute('rm -rf ' .. out)
   end)

   it('nmnist-cnn trains with jitter and dropout, and eval reproduces its test accuracy', function()
      local out = tmpdir()
      local rc, text = run('luajit examples/nmnist-cnn/train.lua --epochs 2 --train 24 --test 12 --threads 2 --out ' .. out
         .. ' --data ' .. DATA .. '/nmnist-small')
      assert.are.equal(0, rc, text)
      local r = result(text)
      local loss = lossColumn(out .. '/loss.txt')
      assert.is_true(loss[2] < loss[1], 'training loss should fall: ' .. loss[1] .. ' -> ' .. loss[2])
      assert.is_true(exists(out .. '/checkpoint.t7s') and exists(out .. '/output-raster.png'))
      local rc2, text2 = run('luajit examples/nmnist-cnn/eval.lua ' .. out .. '/checkpoint.t7s --test 12 --threads 2 --data '
         .. DATA .. '/nmnist-small')
      assert.are.equal(0, rc2, text2)
      assert.are.equal(r.testAccuracy, result(text2).testAccuracy)
      os.execute('rm -rf ' .. out)
   end)

   it('oxford learns the spike pattern (the loss falls) and writes the learned raster beside the target', function()
      local out = tmpdir()
      local rc, text = run('luajit examples/oxford/train.lua --epochs 120 --every 60 --out ' .. out .. ' --data ' .. DATA .. '/oxford')
      assert.are.equal(0, rc, text)
      local r = result(text)
      assert.truthy(r.source:find('files in'))
      assert.is_true(math.abs(r.firstLoss - 223909.1) < 1) -- the reference notebook's epoch-0 loss (silent network)
      assert.is_true(r.trainLoss < 0.8 * r.firstLoss, r.firstLoss .. ' -> ' .. r.trainLoss)
      assert.is_true(exists(out .. '/output-vs-target.png') and exists(out .. '/loss.png'))
      local rc2, text2 = run('luajit examples/oxford/eval.lua ' .. out .. '/checkpoint.t7s --data ' .. DATA .. '/oxford')
      assert.are.equal(0, rc2, text2)
      assert.are.equal(r.testLoss, result(text2).testLoss)
      -- without the data files it generates its own pattern
      local rc3, text3 = run('luajit examples/oxford/train.lua --epochs 3 --every 1 --out ' .. out .. ' --data /nonexistent')
      assert.are.equal(0, rc3, text3)
      assert.truthy(result(text3).source:find('generated'))
      os.execute('rm -rf ' .. out)
   end)

   it('fashion-events (the main job) converts, trains, and eval reproduces its accuracy', function()
      if not exists('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz') then
         pending('dataset-fashion-mnist is not installed (tools/install-deps.sh installs it)')
         return
      end
      local out = tmpdir()
      local rc, text = run('luajit examples/fashion-events/train.lua --epochs 2 --train 96 --test 24 --out ' .. out)
      assert.are.equal(0, rc, text)
      local r = result(text)
      local loss = lossColumn(out .. '/loss.txt')
      assert.is_true(loss[2] < loss[1], 'training loss should fall: ' .. loss[1] .. ' -> ' .. loss[2])
      assert.are.equal(96, r.trainSamples)
      assert.is_true(exists(out .. '/cache/train/96.bs2') and exists(out .. '/cache/t10k/24.bs2'))
      assert.is_true(exists(out .. '/output-raster.png') and exists(out .. '/checkpoint.t7s'))
      local rc2, text2 = run('luajit examples/fashion-events/eval.lua ' .. out .. '/checkpoint.t7s --test 24 --out ' .. out)
      assert.are.equal(0, rc2, text2)
      assert.are.equal(r.testAccuracy, result(text2).testAccuracy)
      os.execute('rm -rf ' .. out)
   end)

   it('fails with a clear message when data is missing and answers --help', function()
      local rc, text = run('luajit examples/nmnist-mlp/train.lua --data /nonexistent')
      assert.are.equal(1, rc)
      assert.truthy(text:find('no N%-MNIST data at /nonexistent'))
      rc, text = run('luajit examples/fashion-events/train.lua --data /nonexistent')
      assert.are.equal(1, rc)
      assert.truthy(text:find('dataset%-fashion%-mnist'))
      rc, text = run('luajit examples/nmnist-mlp/train.lua --help')
      assert.are.equal(0, rc)
      for _, o in ipairs({'epochs', 'batch', 'lr', 'seed', 'threads', 'out', 'data'}) do
         assert.truthy(text:find('%-%-' .. o), o)
      end
      rc, text = run('luajit examples/oxford/train.lua --bogus 1')
      assert.are.equal(2, rc)
      assert.truthy(text:find('unknown option %-%-bogus'))
   end)
end)

-- A mistake on the command line: exit 2 with `<script>: <message>` and no
-- traceback, before anything (the --out folder) is created.  timeout keeps
-- a script that would start its work anyway from running long.
local function refuses(script, args, message)
   local out = tmpdir()
   local rc, text = run('timeout 20 luajit ' .. script .. ' ' .. args .. ' --out ' .. out)
   assert.are.equal(2, rc, script .. ' ' .. args .. ':\n' .. text)
   assert.truthy(text:find(script .. ': ' .. message, 1, true), script .. ' ' .. args .. ':\n' .. text)
   assert.is_nil(text:find('traceback'), text)
   assert.is_false(exists(out), script .. ' ' .. args .. ' created ' .. out)
   os.execute('rm -rf ' .. out)
end

describe('example command lines', function()
   it('refuse bad numbers before creating --out (-1, 0 or nan epochs used to train nothing and exit 0)', function()
      local mlp = 'examples/nmnist-mlp/train.lua'
      refuses(mlp, '--epochs -1', '--epochs expects a whole number >= 1, got -1')
      refuses(mlp, '--epochs 0', '--epochs expects a whole number >= 1, got 0')
      refuses(mlp, '--epochs nan', '--epochs expects a whole number >= 1, got nan')
      refuses(mlp, '--train -5', '--train expects a whole number >= 0, got -5')
      refuses(mlp, '--batch 0', '--batch expects a whole number >= 1, got 0')
      refuses(mlp, '--batch 1.5', '--batch expects a whole number >= 1, got 1.5')
      refuses(mlp, '--threads 0', '--threads expects a whole number >= 1, got 0')
      refuses(mlp, '--workers -1', '--workers expects a whole number from 0 to 1024, got -1')
      refuses(mlp, '--lr nan', '--lr expects a number > 0, got nan')
      refuses('examples/fashion-events/train.lua', '--lr inf', '--lr expects a number > 0, got inf')
      refuses('examples/nmnist-loihi/train.lua', '--seed nan', '--seed expects a whole number from 0 to')
      refuses('examples/nmnist-cnn/train.lua', '--dropout 2', '--dropout expects a number >= 0 and < 1, got 2')
      refuses('examples/nmnist-cnn/train.lua', '--jitter -3', '--jitter expects a whole number from 0 to 33, got -3')
      refuses('examples/nmnist-loihi/train.lua', '--shuffle maybe', '--shuffle expects true or false (or nothing), got maybe')
      -- the auto dataset is loaded in the calling thread: no --workers to set
      refuses('examples/nmnist-auto/train.lua', '--workers 2', 'unknown option --workers')
   end)

   it('oxford refuses 0 epochs (it used to fail loading, or report an older run) and the --batch it ignored', function()
      refuses('examples/oxford/train.lua', '--epochs 0', '--epochs expects a whole number >= 1, got 0')
      refuses('examples/oxford/train.lua', '--epochs -1', '--epochs expects a whole number >= 1, got -1')
      refuses('examples/oxford/train.lua', '--batch 5', 'unknown option --batch')
   end)

   it('eval.lua answers --help (it used to take it for the checkpoint) and asks for a missing checkpoint', function()
      for _, ex in ipairs({'nmnist-mlp', 'nmnist-cnn', 'nmnist-loihi', 'nmnist-auto', 'fashion-events', 'oxford'}) do
         local script = 'examples/' .. ex .. '/eval.lua'
         local rc, text = run('luajit ' .. script .. ' --help')
         assert.are.equal(0, rc, text)
         assert.truthy(text:find('usage: luajit ' .. script .. ' <checkpoint>', 1, true), text)
         rc, text = run('luajit ' .. script)
         assert.are.equal(2, rc, text)
         assert.truthy(text:find(script .. ': missing <checkpoint>', 1, true), text)
      end
   end)
end)

describe('bench command lines', function()
   local function refusesBench(script, args, message)
      local rc, text = run('timeout 20 luajit ' .. script .. ' ' .. args)
      assert.are.equal(2, rc, script .. ' ' .. args .. ':\n' .. text)
      assert.truthy(text:find(script .. ': ' .. message, 1, true), script .. ' ' .. args .. ':\n' .. text)
      assert.is_nil(text:find('traceback'), text)
   end

   it('refuse bad options with exit 2 (they used to run everything, print an empty table or raise raw Lua errors)', function()
      local w = 'bench/workloads.lua'
      refusesBench(w, '--only', '--only needs a value')
      refusesBench(w, '--only NOPE', '--only expects one of all, W1, W2, W2after, W4, got NOPE')
      refusesBench(w, '--only W4 --n abc', '--n expects sizes like 512,4096, got abc')
      refusesBench(w, '--only NOPE --device tpu', '--only expects one of')
      refusesBench(w, '--only W1 --steps x', '--steps expects a whole number >= 1, got x')
      refusesBench(w, '--only W1 --steps 0', '--steps expects a whole number >= 1, got 0')
      refusesBench(w, '--only W1 --batch x', '--batch expects a whole number >= 1, got x')
      for _, b in ipairs({'bench/loihi.lua', 'bench/synapse.lua', 'bench/run.lua'}) do
         refusesBench(b, '--reps x', '--reps expects a whole number >= 1, got x')
      end
      refusesBench('bench/loihi.lua', '--reps', '--reps needs a value')
      refusesBench('bench/run.lua', '--bogus 1', 'unknown option --bogus')
      refusesBench('bench/gpu.lua', '--bogus', 'unknown option --bogus')
      refusesBench('bench/loader.lua', '--epochs 0', '--epochs expects a whole number >= 1, got 0')
      refusesBench(w, '--only W1 --profile', '--profile needs --device cuda')
      refusesBench('bench/kernels.lua', '', 'missing <csv>')
   end)

   it('sum an Nsight Compute CSV per kernel (bench/kernels.lua), by total time, in any unit', function()
      local csv = os.tmpname()
      local function write(text)
         local f = assert(io.open(csv, 'w'))
         f:write(text)
         f:close()
      end
      local header = '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size",'
         .. '"Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"'
      local function launch(id, name, unit, value)
         return string.format('"%d","7","luajit","h","%s","1","13","(128, 1, 1)","(40, 1, 1)","0","9.0",'
            .. '"Command line profiler metrics","gpu__time_duration.sum","%s","%s"', id, name, unit, value)
      end
      write(table.concat({
         '==PROF== Connected to process 7 (/usr/bin/luajit)',
         header,
         launch(0, 'direct_conv_kernel<32>', 'nsecond', '1,500,000'),
         launch(1, 'psp_kernel', 'usecond', '250'),
         launch(2, 'direct_conv_kernel<32>', 'msecond', '0.5'),
         launch(3, 'a ""quoted"", name', 'nsecond', '750,000'),
         launch(4, 'spike_kernel', 'nsecond', '1000'),
      }, '\n') .. '\n')
      local rc, out = run('luajit bench/kernels.lua ' .. csv .. ' --top 2')
      write(header .. '\n' .. launch(0, 'k', 'furlong', '3') .. '\n')
      local rcBad, outBad = run('luajit bench/kernels.lua ' .. csv)
      write('no header here\n')
      local rcNone, outNone = run('luajit bench/kernels.lua ' .. csv)
      os.remove(csv)
      assert.are.equal(0, rc, out)
      -- 5 launches: 2 + 0.25 + 0.75 + 0.001 ms
      assert.truthy(out:find('5 launches, 3.001 ms in all', 1, true), out)
      local rows = {}
      for name, n, total in out:gmatch('\n  (%S[^\n]-)%s+(%d+)%s+([%d%.]+)%s+[%d%.]+%s+[%d%.]+%%') do
         rows[#rows + 1] = {name, tonumber(n), tonumber(total)}
      end
      assert.are.same({{'direct_conv_kernel<32>', 2, 2}, {'a "quoted", name', 1, 0.75}, {'(2 other kernels)', 2, 0.251}},
         rows)
      assert.are.equal(1, rcBad)
      assert.truthy(outBad:find('expected a duration, got "3" "furlong"', 1, true), outBad)
      assert.are.equal(1, rcNone)
      assert.truthy(outNone:find('no CSV header', 1, true), outNone)
   end)
end)
