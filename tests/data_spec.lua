-- snn.data: datasets and loaders
local snn = require 'slayer'
local H = require 'support.helpers'
local T = snn.tensor

local DATA = assert(H.dataDir(), 'shared data not found: run from the checkout next to ../shared or set SLAYER_DATA')
local NM = DATA .. '/nmnist-small'

local function nmnist(list)
   return snn.data.SpikeFiles{root = NM, list = list or 'test100.txt', shape = {2, 34, 34}, tSample = 300, Ts = 1,
      classes = 10}
end

describe('SpikeFiles', function()
   it('reads the list file (CRLF, header), 1-based labels, and bins samples as the reference', function()
      local ds = nmnist('train1K.txt')
      assert.are.equal(1000, #ds)
      assert.are.equal(1000, ds:size())
      -- class counts of train1K.txt (SPEC 20.3)
      local counts = {}
      for i = 1, #ds do counts[ds.labels[i]] = (counts[ds.labels[i]] or 0) + 1 end
      assert.are.same({97, 116, 99, 93, 105, 92, 94, 117, 87, 100}, counts)
      local x, y, label = ds:get(1)
      assert.are.same({2, 34, 34, 300}, x:shape())
      assert.are.same({10, 1, 1, 1}, y:shape())
      assert.are.equal(1, y:select(1, label):item())
      assert.are.equal(1, y:sum():item())
      -- sample 1 is NMNIST_1.bs2 of the reference tests: 4,670 bins set
      assert.are.equal(4670, x:countNonzero())
      local direct = snn.io.read2Dspikes(NM .. '/1.bs2'):toSpikeTensor(T.zeros({2, 34, 34, 300}), 1)
      assert.are.equal(0, T.maxAbsDiff(x, direct))
   end)

   it('keeps its paths packed until ds.paths is read, then reads that table (edits included)', function()
      local ds = nmnist()
      assert.is_nil(rawget(ds, 'paths'))
      local p2, l2path = ds:path(2)
      assert.is_nil(rawget(ds, 'paths')) -- ds:path(i) leaves them packed
      assert.are.equal('string', type(p2))
      assert.are.equal(ds.labels[2], l2path)
      local fromFile = snn.io.read2Dspikes(p2):toSpikeTensor(T.zeros({2, 34, 34, 300}), 1)
      assert.are.equal(0, T.maxAbsDiff(ds:get(2), fromFile))
      assert.has_error(function() ds:path(101) end, 'path: index 101 out of range 1..100')
      local x1, _, l1 = ds:get(1)
      local packedBatches = {}
      for x, _, labels in snn.data.Loader(ds, {batchSize = 7, workers = 2}):iter() do
         packedBatches[#packedBatches + 1] = {x, labels}
      end
      assert.are.equal(15, #packedBatches)
      -- reading ds.paths unpacks them into a plain table of strings
      local paths = ds.paths
      assert.are.equal('table', type(paths))
      assert.are.equal(rawget(ds, 'paths'), paths)
      assert.are.equal(100, #paths)
      local want = {}
      for line in io.lines(NM .. '/test100.txt') do
         local idx = line:match('^(%d+)%s')
         if idx then want[#want + 1] = NM .. '/' .. idx .. '.bs2' end
      end
      assert.are.same(want, paths)
      assert.are.equal(want[2], p2)
      -- and from then on the table is what the dataset reads: the same samples, then an edit
      local x2, _, l2 = ds:get(1)
      assert.are.equal(l1, l2)
      assert.are.equal(0, T.maxAbsDiff(x1, x2))
      local k = 0
      for x, _, labels in snn.data.Loader(ds, {batchSize = 7, workers = 2}):iter() do
         k = k + 1
         assert.are.same(packedBatches[k][2], labels)
         assert.are.equal(0, T.maxAbsDiff(packedBatches[k][1], x))
      end
      assert.are.equal(15, k)
      paths[1] = paths[2]
      local x3 = ds:get(1)
      assert.are.equal(0, T.maxAbsDiff(ds:get(2), x3))
      -- a class derived from SpikeFiles unpacks them too
      local Mine = snn.class('MyFiles', snn.data.SpikeFiles)
      function Mine:extra() return 'mine' end
      local mine = Mine{root = NM, list = 'test100.txt'}
      assert.are.equal('mine', mine:extra())
      assert.are.equal(want[1], mine.paths[1])
      assert.are.equal(100, #mine)
   end)

   it('reports a missing list file and a malformed line clearly', function()
      local ok, err = pcall(snn.data.SpikeFiles, {root = NM, list = 'nope.txt'})
      assert.is_false(ok)
      assert.truthy(err:find('cannot open the list file'))
      local path = os.tmpname()
      local f = io.open(path, 'w')
      f:write('#sample #class\n1\tseven\n')
      f:close()
      ok, err = pcall(snn.data.SpikeFiles, {root = NM, list = path})
      assert.truthy(err:find('line 2'))
      os.remove(path)
   end)

   it('names SpikeFiles and the option for options of the wrong type or range', function()
      local function err(o, want)
         o.root, o.list = NM, 'test100.txt'
         local ok, e = pcall(snn.data.SpikeFiles, o)
         assert.is_false(ok)
         assert.truthy(e:find('SpikeFiles: ' .. want, 1, true), e)
      end
      err({Ts = 'x'}, 'Ts must be a positive number of ms, got x')
      err({tSample = 0 / 0}, 'tSample must be a positive number')
      err({tSample = 0.5}, 'tSample / Ts = 0.5 must give 1 to')
      err({classes = 'x'}, 'classes must be a positive whole number, got x')
      err({classes = 2.5}, 'classes must be a positive whole number')
      err({limit = 'x'}, 'limit must be a whole number of samples')
      err({binningMode = 5}, "binningMode must be 'OR', 'SUM' or 'COUNT', got 5")
      err({shape = {2, 'a', 34}}, 'shape must be {C, H, W} as positive whole numbers')
   end)

   it('bins a sample into int(tSample / Ts) bins, truncating (0.3 / 0.1 = 2.9999999999999996 gives 2)', function()
      assert.is_true(0.3 / 0.1 < 3)
      local ds = snn.data.SpikeFiles{root = NM, list = 'test100.txt', shape = {2, 34, 34}, tSample = 0.3, Ts = 0.1}
      assert.are.same({2, 34, 34, 2}, ds:get(1):shape())
   end)
end)

describe('Loader', function()
   it('batches in order without shuffle, with a smaller last batch unless dropLast', function()
      local ds = nmnist()
      local ld = snn.data.Loader(ds, {batchSize = 12})
      assert.are.equal(9, #ld)
      local seen, sizes = {}, {}
      for x, y, labels in ld:iter() do
         sizes[#sizes + 1] = x:size(1)
         assert.are.same({x:size(1), 10, 1, 1, 1}, y:shape())
         for _, l in ipairs(labels) do seen[#seen + 1] = l end
      end
      assert.are.same({12, 12, 12, 12, 12, 12, 12, 12, 4}, sizes)
      assert.are.same(ds.labels, seen)
      assert.are.equal(8, #snn.data.Loader(ds, {batchSize = 12, dropLast = true}))
   end)

   it('shuffles deterministically per (seed, epoch), as a permutation', function()
      local ds = nmnist()
      local a = snn.data.Loader(ds, {batchSize = 10, shuffle = true, seed = 4})
      local b = snn.data.Loader(ds, {batchSize = 10, shuffle = true, seed = 4})
      local o1, o2 = a:order(1), b:order(1)
      assert.are.same(o1, o2)
      assert.are_not.same(o1, a:order(2))
      assert.are_not.same(o1, snn.data.Loader(ds, {batchSize = 10, shuffle = true, seed = 5}):order(1))
      local sorted = {}
      for i, v in ipairs(o1) do sorted[i] = v end
      table.sort(sorted)
      for i = 1, 100 do assert.are.equal(i, sorted[i]) end
      -- the global generator is not disturbed
      snn.manualSeed(1)
      local r1 = T.rand({3}):totable()
      snn.manualSeed(1)
      a:order(3)
      assert.are.same(r1, T.rand({3}):totable())
   end)

   it('gives exactly the same batches with worker threads as without', function()
      local ds = nmnist()
      local plain = snn.data.Loader(ds, {batchSize = 7, shuffle = true, seed = 2, workers = 0})
      local threaded = snn.data.Loader(ds, {batchSize = 7, shuffle = true, seed = 2, workers = 2})
      for epoch = 1, 2 do
         local it1, it2 = plain:iter(), threaded:iter()
         local n = 0
         while true do
            local x1, y1, l1 = it1()
            local x2, y2, l2 = it2()
            if not x1 then
               assert.is_nil(x2)
               break
            end
            n = n + 1
            assert.are.equal(0, T.maxAbsDiff(x1, x2))
            assert.are.equal(0, T.maxAbsDiff(y1, y2))
            assert.are.same(l1, l2)
         end
         assert.are.equal(#plain, n)
      end
   end)

   it('reports an unreadable file from a worker thread in the training thread', function()
      local dir = os.tmpname()
      os.remove(dir)
      os.execute('mkdir -p ' .. dir)
      local f = io.open(dir .. '/list.txt', 'w')
      f:write('#sample #class\n1\t0\n2\t1\n')
      f:close()
      os.execute('cp ' .. NM .. '/1.bs2 ' .. dir .. '/1.bs2')
      f = io.open(dir .. '/2.bs2', 'wb')
      f:write('abc')
      f:close()
      local ds = snn.data.SpikeFiles{root = dir, list = 'list.txt', classes = 10}
      for _, w in ipairs({0, 2}) do
         local ok, err = pcall(function()
            for _ in snn.data.Loader(ds, {batchSize = 1, workers = w}):iter() do end
         end)
         assert.is_false(ok)
         assert.truthy(tostring(err):find('2.bs2', 1, true) and tostring(err):find('byte 0'), tostring(err))
      end
      os.execute('rm -rf ' .. dir)
   end)

   it('reports a sample whose path or label was removed, with and without workers (this crashed)', function()
      for _, w in ipairs({0, 2}) do
         local ds = nmnist()
         ds.paths[2] = nil
         local ok, err = pcall(function()
            for _ in snn.data.Loader(ds, {batchSize = 2, workers = w}):iter() do end
         end)
         assert.is_false(ok)
         assert.truthy(err:find('Loader: sample 2 has no file path (paths[2] is nil)', 1, true), err)
         ds = nmnist()
         ds.labels[3] = 0 / 0
         ok, err = pcall(function()
            for _ in snn.data.Loader(ds, {batchSize = 2, workers = w}):iter() do end
         end)
         assert.truthy(not ok and err:find('Loader: sample 3 has no whole-number label', 1, true), err)
      end
      local ds = nmnist()
      ds.paths[1] = nil
      local ok, err = pcall(ds.get, ds, 1)
      assert.truthy(not ok and err:find('get: sample 1 has no file path', 1, true), err)
   end)

   it('checks its options and the dataset size up front (a size of 1e12 used to hang)', function()
      local ds = nmnist()
      local function err(d, o, want)
         local t0 = os.clock()
         local ok, e = pcall(snn.data.Loader, d, o)
         assert.is_false(ok)
         assert.truthy(e:find('Loader: ' .. want, 1, true), e)
         assert.is_true(os.clock() - t0 < 1)
      end
      err(ds, {workers = 'x'}, 'workers must be a whole number of threads from 0 to 1024, got x')
      err(ds, {workers = 1.5}, 'workers must be')
      err(ds, {workers = 2, depth = 'x'}, 'depth must be a whole number of batches from 1 to 1024, got x')
      err(ds, {depth = 0}, 'depth must be')
      err(ds, {seed = 'x'}, 'seed must be a whole number from 0 to 2^53, got x')
      err(ds, {batchSize = 1e300}, 'batchSize must be a positive whole number')
      err(ds, 'big', 'expected an options table')
      local function custom(n) return {get = function() return T.zeros({1}), T.zeros({1}), 1 end, size = function() return n end} end
      err(custom(1e12), {batchSize = 1}, 'the dataset size must be a whole number from 0 to 2^27, got 1000000000000')
      err(custom(-3), {}, 'the dataset size must be')
      err(custom(0 / 0), {}, 'the dataset size must be')
      assert.are.equal(3, #snn.data.Loader(custom(5), {batchSize = 2}))
   end)

   it('loads a generic Lua dataset in the calling thread', function()
      local ds = {n = 5}
      for i = 1, 5 do ds[i] = i end
      function ds:get(i) return T.full({1, 1, 1, 3}, i), T.zeros({2, 1, 1, 1}), i end
      local got = {}
      for x, _, labels in snn.data.Loader(ds, {batchSize = 2, workers = 2}):iter() do
         assert.are.same({#labels, 1, 1, 1, 3}, x:shape())
         for _, l in ipairs(labels) do got[#got + 1] = l end
      end
      assert.are.same({1, 2, 3, 4, 5}, got)
   end)
end)

describe('SaccadeImages', function()
   it('converts images once, caches them on disk and loads them like spike files', function()
      local dir = os.tmpname()
      os.remove(dir)
      local img = T.zeros({3, 28, 28})
      img:narrow(2, 6, 16):narrow(3, 10, 6):fill(255)
      img:select(1, 2):narrow(1, 10, 6):fill(180)
      local ds = snn.data.SaccadeImages{images = img, labels = {0, 4, 9}, cache = dir, tSample = 300, Ts = 1}
      assert.are.equal(3, #ds)
      local x, y, label = ds:get(2)
      assert.are.equal(5, label)
      assert.are.equal(1, y:select(1, 5):item())
      assert.is_true(x:countNonzero() > 100)
      assert.is_not_nil(io.open(dir .. '/2.bs2', 'rb'))
      local mtime = io.popen('stat -c %Y%N ' .. dir .. '/2.bs2'):read('*a')
      local x2 = ds:get(2)
      assert.are.equal(0, T.maxAbsDiff(x, x2))
      assert.are.equal(mtime, io.popen('stat -c %Y%N ' .. dir .. '/2.bs2'):read('*a'))
      local batches = 0
      for xb in snn.data.Loader(ds, {batchSize = 2, workers = 1}):iter() do
         batches = batches + 1
         assert.are.equal(34, xb:size(4))
      end
      assert.are.equal(2, batches)
      -- the loader's workers converted images 1 and 3 in one batch (prepare): each file is the one that
      -- converting that image alone writes
      local dir2 = os.tmpname()
      os.remove(dir2)
      local one = snn.data.SaccadeImages{images = img, labels = {0, 4, 9}, cache = dir2, tSample = 300, Ts = 1}
      for i = 1, 3 do
         local a, _, la = ds:get(i)
         local b, _, lb = one:get(i)
         assert.are.equal(la, lb)
         assert.are.equal(0, T.maxAbsDiff(a, b), 'sample ' .. i)
      end
      assert.is_true(T.maxAbsDiff(ds:get(1), ds:get(3)) > 0)
      os.execute('rm -rf ' .. dir .. ' ' .. dir2)
   end)

   it('refuses labels outside 0..classes-1 and a cache folder it cannot create', function()
      local img = T.zeros({2, 28, 28})
      local dir = os.tmpname()
      os.remove(dir)
      local ok, err = pcall(snn.data.SaccadeImages, {images = img, labels = {99, 1}, cache = dir})
      assert.truthy(not ok and err:find('SaccadeImages: label 1 is 99, expected 0..9', 1, true), err)
      ok, err = pcall(snn.data.SaccadeImages, {images = img, labels = {1, -5}, cache = dir})
      assert.truthy(not ok and err:find('label 2 is -5', 1, true), err)
      local file = os.tmpname() -- a file where a folder is needed
      ok, err = pcall(snn.data.SaccadeImages, {images = img, labels = {1, 2}, cache = file .. '/cache'})
      assert.truthy(not ok and err:find("SaccadeImages: cache: cannot create '" .. file .. "'", 1, true), err)
      os.remove(file)
   end)
end)

describe('jitter', function()
   it('moves each sample by whole pixels within the bound and keeps the spikes that stay inside', function()
      snn.manualSeed(3)
      local x = T.zeros({8, 2, 10, 10, 5})
      x:narrow(3, 4, 3):narrow(4, 4, 3):fill(1) -- a 3x3 block in the middle of every sample and bin
      local y = snn.data.jitter(x, 2)
      assert.are.same(x:shape(), y:shape())
      local moved = 0
      for n = 1, 8 do
         local a, b = x:select(1, n), y:select(1, n)
         assert.are.equal(a:sum():item(), b:sum():item()) -- nothing falls off from the middle
         local dy, dx
         for sy = -2, 2 do for sx = -2, 2 do
            if b:narrow(2, 4 + sy, 3):narrow(3, 4 + sx, 3):sum():item() == a:sum():item() then dy, dx = sy, sx end
         end end
         assert.is_not_nil(dy, 'sample ' .. n .. ' moved by whole pixels within 2')
         if dy ~= 0 or dx ~= 0 then moved = moved + 1 end
      end
      assert.is_true(moved >= 4)
      assert.are.equal(x, snn.data.jitter(x, 0))
      assert.has_error(function() snn.data.jitter(T.zeros({2, 3}), 1) end)
      assert.has_error(function() snn.data.jitter(T.zeros({1, 2, 4, 4, 3}), -1) end)
      assert.has_error(function() snn.data.jitter(T.zeros({1, 2, 4, 4, 3}), 1.5) end)
   end)

   it('moves a batch of no time bins too', function()
      local y = snn.data.jitter(T.zeros({3, 2, 4, 4, 0}), 1)
      assert.are.same({3, 2, 4, 4, 0}, y:shape())
   end)
end)
