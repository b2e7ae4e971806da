--[[
snn.data -- datasets and batch loaders.

A dataset is any object with `#ds` (its size) and `ds:get(i)` returning
input (C, H, W, T), target (classes, 1, 1, 1) and the 1-based label.
(LuaJIT's `#` ignores __len on tables, so the datasets here set ds[i] to
true for each sample; likewise loader[b] is the size of batch b, so #loader
is the number of batches.)

    local train = snn.data.SpikeFiles{root = 'NMNISTsmall', list = 'train1K.txt',
                                      shape = {2, 34, 34}, tSample = 300, Ts = 1, classes = 10}
    local loader = snn.data.Loader(train, {batchSize = 12, shuffle = true, seed = 1, workers = 2})
    for input, target, labels in loader:iter() do ... end   -- (N, C, H, W, T), (N, classes, 1, 1, 1)

Datasets made of spike files (SpikeFiles, and SaccadeImages once its cache
is written) expose `ds.paths`/`ds.labels` (the paths are kept packed, two
objects for the collector instead of one string per sample, and `ds.paths`
becomes a table of strings when first read); for them a Loader with
`workers > 0` reads and bins the files in C threads, a bounded number of
batches ahead of the training loop, into fresh tensors (the batches handed
out are the caller's to keep).  Other datasets are loaded in the calling
thread.  The order is a permutation drawn from the loader's own generator,
seeded by (seed, epoch), so it does not disturb snn.manualSeed and is the
same with any number of workers.

`device = 'cuda'` hands out batches on the GPU: file batches are binned into
page-locked (pinned) host buffers, allocated once per slot, and copied to
fresh device tensors without waiting for the GPU work queued before (the
copy overlaps the previous step); a buffer goes back to the workers once
its copy has finished.  (Pinned memory: the batch's bytes per slot.)
]]
local ffi = require 'ffi'
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local nn = require 'slayer.nn'

local C = L.C
local M = {}

local function fail(fname, msg) L.raise(fname .. ': ' .. msg) end
local function cfail() L.raise(L.lastError()) end

local isWhole = L.isWhole

-- the most samples a dataset may have for the loaders: an epoch's order is
-- a Lua table of that many numbers
local MAX_SAMPLES = 2 ^ 27

local FORMATS = {bs1 = 0, bs2 = 1, bs3 = 2}
local MODES = {OR = 0, SUM = 1, COUNT = 2}

local function fileExists(path)
   local f = io.open(path, 'rb')
   if f then f:close() return true end
   return false
end

---------------------------------------------------------------------------
-- SpikeFiles: N-MNIST-style folders with list files
---------------------------------------------------------------------------

local Dataset = nn.class('snn.data.Dataset')
M.Dataset = Dataset

function Dataset:size() return #self.labels end

-- print(ds) in the REPL: snn.data.SpikeFiles: 1000 samples of 2x34x34 x 300 bins (Ts 1 ms), 10 classes
function Dataset:__tostring()
   local ok, n = pcall(self.size, self)
   local text = (self.__typename or 'dataset') .. ': ' .. (ok and tostring(n) or '?') .. ' samples'
   local sh = self.shape
   if type(sh) == 'table' and #sh > 0 and self.nBins then
      text = text .. ' of ' .. table.concat(sh, 'x') .. ' x ' .. self.nBins .. ' bins (Ts ' .. tostring(self.Ts) .. ' ms)'
   end
   if self.classes then text = text .. ', ' .. self.classes .. ' classes' end
   return text
end

-- The sample paths of a file dataset, packed: one string holding every path
-- NUL-terminated and a C array of their offsets.  A table of paths is one
-- object per sample for the collector, and each full collection visits them
-- all: 60,000 names made one take 3.8 ms against 0.04 ms for the package
-- alone, and the library forces about one per training step.  Reading
-- ds.paths unpacks them into that table (for code that edits it), which is
-- from then on what the dataset reads.
local function packPaths(self, list)
   local n = #list
   local off = ffi.new('int64_t[?]', n + 1)
   local pos = 0
   for i = 1, n do
      off[i - 1] = pos
      pos = pos + #list[i] + 1
   end
   off[n] = pos
   self._pathBlob, self._pathOff, self._pathCount = table.concat(list, '\0') .. '\0', off, n
   for i = 1, n do self[i] = true end -- so that #ds works under LuaJIT
end

-- sample i's path as a C string while the paths are packed, else nil
local function packedPath(ds, i)
   local blob = rawget(ds, '_pathBlob')
   if not blob or i < 1 or i > ds._pathCount then return nil end
   return ffi.cast('const char *', blob) + ds._pathOff[i - 1]
end

nn.setLookup(Dataset, function(self, k)
   if k ~= 'paths' or not rawget(self, '_pathBlob') then return nil end
   local t = {}
   for i = 1, self._pathCount do t[i] = ffi.string(packedPath(self, i)) end
   self.paths, self._pathBlob, self._pathOff, self._pathCount = t, nil, nil, nil
   return t
end)

-- true when ds's samples are files the C loaders can read
local function isFileDataset(ds)
   return (rawget(ds, '_pathBlob') ~= nil or type(ds.paths) == 'table') and ds.format ~= nil and ds.shape ~= nil
end

--- one sample as the loaders produce it, from a file on disk
function Dataset:_loadFile(path, label)
   local c, h, w = self.shape[1], self.shape[2], self.shape[3]
   local input = T.zeros({c, h, w, self.nBins})
   if C.sl_sample_load(path, self.format, c, h, w, self.nBins, self.Ts, self.mode, input:data()) ~= 0 then cfail() end
   local target = T.zeros({self.classes, 1, 1, 1})
   if label >= 1 and label <= self.classes then target:data()[label - 1] = 1 end
   return input, target, label
end

-- sample i's file path (a string, or a C string into the packed paths)
-- and label, checked (the tables can be edited after the dataset was made)
local function sampleAt(ds, i, fname)
   local path, label = packedPath(ds, i), ds.labels[i]
   if not path then
      if rawget(ds, '_pathBlob') then fail(fname, 'sample ' .. i .. ' outside 1..' .. ds._pathCount) end
      path = type(ds.paths) == 'table' and ds.paths[i] or nil
      if type(path) ~= 'string' then
         fail(fname, 'sample ' .. i .. ' has no file path (paths[' .. i .. '] is ' .. type(path) .. ')')
      end
   end
   if not isWhole(label, -2 ^ 31, 2 ^ 31 - 1) then
      fail(fname, 'sample ' .. i .. ' has no whole-number label (labels[' .. i .. '] is ' .. L.valueStr(label) .. ')')
   end
   return path, label
end

function Dataset:get(i)
   if type(i) ~= 'number' or i < 1 or i > self:size() or i % 1 ~= 0 then
      fail('get', 'index ' .. L.valueStr(i) .. ' out of range 1..' .. self:size())
   end
   return self:_loadFile(sampleAt(self, i, 'get'))
end

-- sample i's path as a Lua string (for io.open)
local function pathString(ds, i, fname)
   local path = sampleAt(ds, i, fname)
   return type(path) == 'string' and path or ffi.string(path)
end

--- ds:path(i): sample i's file path and label (to read its events, say),
-- without unpacking the paths as reading ds.paths does.
function Dataset:path(i)
   if type(i) ~= 'number' or i < 1 or i > self:size() or i % 1 ~= 0 then
      fail('path', 'index ' .. L.valueStr(i) .. ' out of range 1..' .. self:size())
   end
   return pathString(self, i, 'path'), self.labels[i]
end

local function sampleOpts(self, o, fname)
   self.shape = o.shape or {2, 34, 34}
   local sh = self.shape
   if type(sh) ~= 'table' or #sh ~= 3 or not (isWhole(sh[1], 1, 2 ^ 31 - 1) and isWhole(sh[2], 1, 2 ^ 31 - 1)
      and isWhole(sh[3], 1, 2 ^ 31 - 1)) then
      fail(fname, 'shape must be {C, H, W} as positive whole numbers')
   end
   self.tSample = o.tSample or 300
   self.Ts = o.Ts or 1
   for _, k in ipairs({'tSample', 'Ts'}) do
      local v = self[k]
      if type(v) ~= 'number' or not (v > 0 and v < math.huge) then
         fail(fname, k .. ' must be a positive number of ms, got ' .. L.valueStr(v))
      end
   end
   local q = self.tSample / self.Ts
   self.nBins = math.floor(q)
   if not isWhole(self.nBins, 1, 2 ^ 31 - 1) then
      fail(fname, 'tSample / Ts = ' .. q .. ' must give 1 to 2^31 - 1 time bins')
   end
   self.classes = o.classes or 10
   if not isWhole(self.classes, 1, 2 ^ 31 - 1) then
      fail(fname, 'classes must be a positive whole number, got ' .. L.valueStr(self.classes))
   end
   local mode = o.binningMode or 'OR'
   self.mode = type(mode) == 'string' and MODES[mode:upper()]
   if not self.mode then fail(fname, "binningMode must be 'OR', 'SUM' or 'COUNT', got " .. L.valueStr(mode)) end
end

local SpikeFiles = nn.class('snn.data.SpikeFiles', Dataset)
M.SpikeFiles = SpikeFiles

--- root: the folder of samples (root/<index>.<ext>); list: a list file
-- (relative to root unless absolute) with a header line and
-- "index<TAB>label" rows, labels 0-based in the file, 1-based here.
-- shape {C, H, W}, tSample and Ts (ms), classes, ext ('bs2'), binningMode,
-- limit (keep only the first `limit` samples).
function SpikeFiles:__init(o)
   local fname = 'SpikeFiles'
   if type(o) ~= 'table' then fail(fname, 'expected an options table {root=, list=, ...}') end
   if type(o.root) ~= 'string' then fail(fname, 'root (the sample folder) is required') end
   if type(o.list) ~= 'string' then fail(fname, 'list (the list file) is required') end
   sampleOpts(self, o, fname)
   self.root = o.root
   self.ext = o.ext or 'bs2'
   if o.limit ~= nil and not isWhole(o.limit, -math.huge, math.huge) then
      fail(fname, 'limit must be a whole number of samples (0 for all), got ' .. L.valueStr(o.limit))
   end
   self.format = FORMATS[self.ext]
   if not self.format then fail(fname, "ext must be 'bs1', 'bs2' or 'bs3', got '" .. L.valueStr(self.ext) .. "'") end
   local listPath = o.list:sub(1, 1) == '/' and o.list or (o.root .. '/' .. o.list)
   local f = io.open(listPath, 'rb')
   if not f then
      fail(fname, 'cannot open the list file ' .. listPath .. ' (N-MNIST-style data: a folder of <index>.bs2 files '
         .. 'with train/test list files, e.g. ../shared/data/nmnist-small)')
   end
   -- (only the paths, packed, and the labels are kept: every string held
   -- here is an object the collector visits at each full collection)
   local paths
   paths, self.labels = {}, {}
   local lineNo = 0
   for line in f:lines() do
      lineNo = lineNo + 1
      line = line:gsub('\r$', '')
      if not line:match('^%s*#') and line:match('%S') then
         local idx, lab = line:match('^%s*(%S+)%s+(%-?%d+)%s*$')
         if not idx then
            f:close()
            fail(fname, listPath .. ' line ' .. lineNo .. ': expected "index<TAB>label", got "' .. line .. '"')
         end
         lab = tonumber(lab) + 1
         if lab < 1 or lab > self.classes then
            f:close()
            fail(fname, listPath .. ' line ' .. lineNo .. ': label ' .. (lab - 1) .. ' outside 0..' .. (self.classes - 1))
         end
         paths[#paths + 1] = o.root .. '/' .. idx .. '.' .. self.ext
         self.labels[#self.labels + 1] = lab
      end
   end
   f:close()
   if #paths == 0 then fail(fname, listPath .. ' lists no samples') end
   if o.limit and o.limit > 0 then
      for i = #paths, o.limit + 1, -1 do paths[i], self.labels[i] = nil, nil end
   end
   packPaths(self, paths)
end

---------------------------------------------------------------------------
-- SaccadeImages: static images turned into events, cached on disk
---------------------------------------------------------------------------

local SaccadeImages = nn.class('snn.data.SaccadeImages', Dataset)
M.SaccadeImages = SaccadeImages

--- images: tensor {N, H, W} (0..255); labels: tensor {N} or Lua table of
-- 0-based labels (IDX files hold 0-based labels); cache: folder for the
-- converted samples (<i>.bs2, written once, reused later); saccade: options
-- for snn.io.saccade (its seed is offset by the sample index); shape
-- (default {2, 34, 34}), tSample, Ts, classes as SpikeFiles.
function SaccadeImages:__init(o)
   local fname = 'SaccadeImages'
   if type(o) ~= 'table' then fail(fname, 'expected an options table {images=, labels=, cache=, ...}') end
   if not T.isTensor(o.images) or o.images:dim() ~= 3 then
      fail(fname, 'images must be a {N, H, W} tensor')
   end
   if type(o.cache) ~= 'string' then fail(fname, 'cache (a folder for converted samples) is required') end
   sampleOpts(self, o, fname)
   self.format = 1
   self.images = o.images
   self.cache = o.cache
   self.saccadeOpts = o.saccade or {}
   local n = o.images:size(1)
   local labs = T.isTensor(o.labels) and o.labels:totable() or o.labels
   if type(labs) ~= 'table' or #labs ~= n then fail(fname, 'labels must hold one label per image (' .. n .. ')') end
   for i = 1, n do
      if not isWhole(labs[i], 0, self.classes - 1) then
         fail(fname, 'label ' .. i .. ' is ' .. L.valueStr(labs[i]) .. ', expected 0..' .. (self.classes - 1))
      end
   end
   local ok, err = pcall(require('slayer.utils').mkdir, o.cache)
   if not ok then fail(fname, 'cache: ' .. tostring(err):gsub('^.-mkdir: ', '')) end
   local paths = {}
   self.labels = {}
   for i = 1, n do
      paths[i] = o.cache .. '/' .. i .. '.bs2'
      self.labels[i] = labs[i] + 1
   end
   packPaths(self, paths)
end

--- Convert image i unless its cache file exists.
function SaccadeImages:convert(i)
   local path = pathString(self, i, 'convert')
   if fileExists(path) then return false end
   local sio = require 'slayer.io'
   local so = {}
   for k, v in pairs(self.saccadeOpts) do so[k] = v end
   so.seed = (so.seed or 0) + i
   so.width, so.height = self.shape[3], self.shape[2]
   local ev = sio.saccade(self.images:select(1, i), so)
   sio.encode2Dspikes(path, ev)
   return true
end

--- Convert every image not yet in the cache, in parallel C threads, chunk
-- by chunk (progress(done, total) is called after each chunk); returns how
-- many were converted.
function SaccadeImages:prepare(progress)
   local missing, missingPaths = {}, {}
   for i = 1, self:size() do
      local path = pathString(self, i, 'prepare')
      if not fileExists(path) then
         local k = #missing + 1
         missing[k], missingPaths[k] = i, path
      end
   end
   local sio = require 'slayer.io'
   local so = {}
   for k, v in pairs(self.saccadeOpts) do so[k] = v end
   local base = so.seed or 0
   so.seed = nil
   so.width, so.height = self.shape[3], self.shape[2]
   local chunk = 256
   for lo = 1, #missing, chunk do
      local hi = math.min(lo + chunk - 1, #missing)
      local images = T.empty({hi - lo + 1, self.images:size(2), self.images:size(3)})
      local chunkPaths, seeds = {}, {}
      for k = 1, hi - lo + 1 do
         local i = missing[lo + k - 1]
         images:select(1, k):copy(self.images:select(1, i))
         chunkPaths[k], seeds[k] = missingPaths[lo + k - 1], base + i
      end
      sio.saccadeToFiles(images, chunkPaths, so, seeds)
      if progress then progress(hi, #missing) end
   end
   return #missing
end

function SaccadeImages:get(i)
   if type(i) ~= 'number' or i < 1 or i > self:size() or i % 1 ~= 0 then
      fail('get', 'index ' .. L.valueStr(i) .. ' out of range 1..' .. self:size())
   end
   self:convert(i)
   return self:_loadFile(sampleAt(self, i, 'get'))
end

---------------------------------------------------------------------------
-- Loader
---------------------------------------------------------------------------

local Loader = nn.class('snn.data.Loader')
M.Loader = Loader

-- xorshift64*, seeded by (seed, epoch): the loader's own order generator
local function permutation(n, seed, epoch)
   local s = ffi.new('uint64_t[1]', 0x9E3779B97F4A7C15ULL)
   s[0] = s[0] * (seed + 1) + 0xD1B54A32D192ED03ULL * (epoch + 1)
   local function nxt()
      s[0] = bit.bxor(s[0], bit.rshift(s[0], 12))
      s[0] = bit.bxor(s[0], bit.lshift(s[0], 25))
      s[0] = bit.bxor(s[0], bit.rshift(s[0], 27))
      return tonumber(bit.rshift(s[0] * 0x2545F4914F6CDD1DULL, 11)) / 9007199254740992
   end
   for _ = 1, 4 do nxt() end
   local p = {}
   for i = 1, n do p[i] = i end
   for i = n, 2, -1 do
      local j = math.floor(nxt() * i) + 1
      p[i], p[j] = p[j], p[i]
   end
   return p
end
M._permutation = permutation

-- print(loader) in the REPL
function Loader:__tostring()
   local parts = {'batches of ' .. tostring(self.batchSize)}
   if self.shuffle then parts[#parts + 1] = 'shuffled (seed ' .. tostring(self.seed) .. ')' end
   if self.dropLast then parts[#parts + 1] = 'last partial batch dropped' end
   parts[#parts + 1] = (self.workers or 0) .. ' worker thread' .. (self.workers == 1 and '' or 's')
   if self.device ~= 'cpu' then parts[#parts + 1] = 'to ' .. tostring(self.device) end
   return 'snn.data.Loader over ' .. tostring(self.dataset) .. '\n  ' .. table.concat(parts, ', ')
end

--- Loader(ds, opts): ds has ds:size() (else #ds) of at most 2^27 samples;
-- opts batchSize (1), shuffle, seed (0..2^53), dropLast, workers (0..1024
-- threads), depth (batches ahead, 1..1024; default 2 * workers), device.
function Loader:__init(ds, o)
   local fname = 'Loader'
   o = o or {}
   if type(ds) ~= 'table' or type(ds.get) ~= 'function' then
      fail(fname, 'expected a dataset with #ds and ds:get(i)')
   end
   if type(o) ~= 'table' then fail(fname, 'expected an options table, got ' .. type(o)) end
   self.dataset = ds
   self.batchSize = o.batchSize or 1
   if not isWhole(self.batchSize, 1, 2 ^ 31 - 1) then
      fail(fname, 'batchSize must be a positive whole number, got ' .. L.valueStr(self.batchSize))
   end
   self.shuffle = o.shuffle and true or false
   self.seed = o.seed or 0
   if not isWhole(self.seed, 0, 2 ^ 53) then
      fail(fname, 'seed must be a whole number from 0 to 2^53, got ' .. L.valueStr(self.seed))
   end
   self.dropLast = o.dropLast and true or false
   self.workers = o.workers or 0
   if not isWhole(self.workers, 0, 1024) then
      fail(fname, 'workers must be a whole number of threads from 0 to 1024, got ' .. L.valueStr(self.workers))
   end
   self.depth = o.depth or math.min(1024, math.max(2, 2 * self.workers))
   if not isWhole(self.depth, 1, 1024) then
      fail(fname, 'depth must be a whole number of batches from 1 to 1024, got ' .. L.valueStr(self.depth))
   end
   self.device = o.device or 'cpu'
   if self.device ~= 'cpu' and self.device ~= 'cuda' then
      fail(fname, "device must be 'cpu' or 'cuda', got " .. L.valueStr(self.device))
   end
   if self.device == 'cuda' and not require('slayer.cuda').isAvailable() then
      fail(fname, "device 'cuda': " .. tostring(require('slayer.cuda').unavailableReason()))
   end
   self.epoch = 0
   local n
   if type(ds.size) == 'function' then n = ds:size() else n = #ds end
   if not isWhole(n, 0, MAX_SAMPLES) then
      fail(fname, 'the dataset size must be a whole number from 0 to 2^27, got ' .. L.valueStr(n))
   end
   self.n = n
   -- loader[b] = size of batch b, so that #loader is the number of batches
   for b = 1, self:numBatches() do
      self[b] = math.min(self.batchSize, self.n - (b - 1) * self.batchSize)
   end
end

function Loader:numBatches()
   if self.dropLast then return math.floor(self.n / self.batchSize) end
   return math.ceil(self.n / self.batchSize)
end

--- The sample order of the next epoch (or of `epoch`, 1-based).
function Loader:order(epoch)
   epoch = epoch or self.epoch + 1
   if not isWhole(epoch, 1, 2 ^ 53) then
      fail('order', 'expected a whole epoch number >= 1, got ' .. (type(epoch) == 'number' and L.valueStr(epoch) or type(epoch)))
   end
   local n = self.n
   local order = self.shuffle and permutation(n, self.seed, epoch) or nil
   if not order then
      order = {}
      for i = 1, n do order[i] = i end
   end
   if self.dropLast then
      for i = #order, math.floor(n / self.batchSize) * self.batchSize + 1, -1 do order[i] = nil end
   end
   return order
end

local function usesWorkers(self)
   return self.workers > 0 and isFileDataset(self.dataset)
end

-- device batches: copy n values of pinned host memory into new GPU tensors
-- (asynchronous: the source stays untouched until the copy has finished)
local function toDevice(self, xin, tin, inShape, tShape)
   local input, target = T.empty(inShape, self.device), T.empty(tShape, self.device)
   if C.sl_copy_from_host(input._c, xin, input:numel()) ~= 0 then cfail() end
   if C.sl_copy_from_host(target._c, tin, target:numel()) ~= 0 then cfail() end
   return input, target
end

-- the single-threaded loader's pinned pair, zeroed, once the previous copy
-- out of it has finished
local function stagingBuffers(self, nIn, nTarget)
   local cuda = require 'slayer.cuda'
   local st = self._staging
   if not st or st.nIn < nIn or st.nTarget < nTarget then
      if st and st.event then cuda.waitEvent(st.event) end
      st = {nIn = nIn, nTarget = nTarget, input = cuda.pinnedBuffer(nIn), target = cuda.pinnedBuffer(nTarget)}
      self._staging = st
   elseif st.event then
      cuda.waitEvent(st.event)
   end
   st.event = nil
   ffi.fill(st.input, nIn * 4)
   ffi.fill(st.target, nTarget * 4)
   return st.input, st.target
end

-- single-threaded.  File datasets load straight into the batch tensor (the
-- same C routine the workers use); other datasets go through ds:get.
-- sample i of a custom dataset gave t as its input or target: a tensor of
-- the shape of the batch's first one (the message is built only on failure)
local function checkSample(i, what, t, first)
   if not T.isTensor(t) then
      fail('Loader', 'ds:get(' .. i .. ') gave ' .. L.valueStr(t) .. ' as its ' .. what:match('%S+$') .. ', expected a tensor')
   end
   if first and not T._sameShape(t, first) then
      fail('Loader', 'ds:get(' .. i .. ') gave ' .. what .. ' of ' .. T.shapeStr(t) .. ', the batch\'s first sample one of '
         .. T.shapeStr(first))
   end
end

local function lazyIter(self, order)
   local ds, B = self.dataset, self.batchSize
   local b, nb = 0, math.ceil(#order / B)
   local files = isFileDataset(ds)
   return function()
      if b >= nb then return nil end
      local lo, hi = b * B + 1, math.min((b + 1) * B, #order)
      b = b + 1
      local labels = {}
      if files then
         local c, h, w = ds.shape[1], ds.shape[2], ds.shape[3]
         local per = c * h * w * ds.nBins
         local m = hi - lo + 1
         local input, target, xin, tin
         if self.device == 'cpu' then
            input = T.zeros({m, c, h, w, ds.nBins})
            target = T.zeros({m, ds.classes, 1, 1, 1})
            xin, tin = input:data(), target:data()
         else
            xin, tin = stagingBuffers(self, m * per, m * ds.classes)
         end
         for k = lo, hi do
            local i = order[k]
            local path, lab = sampleAt(ds, i, 'Loader')
            if ds.convert then ds:convert(i) end
            if C.sl_sample_load(path, ds.format, c, h, w, ds.nBins, ds.Ts, ds.mode, xin + (k - lo) * per) ~= 0 then
               cfail()
            end
            labels[#labels + 1] = lab
            if lab >= 1 and lab <= ds.classes then tin[(k - lo) * ds.classes + lab - 1] = 1 end
         end
         if self.device ~= 'cpu' then
            input, target = toDevice(self, xin, tin, {m, c, h, w, ds.nBins}, {m, ds.classes, 1, 1, 1})
            self._staging.event = require('slayer.cuda').recordEvent()
         end
         return input, target, labels
      end
      local inputs, targets = {}, {}
      for k = lo, hi do
         local x, y, lab = ds:get(order[k])
         -- stacked into the batch: tensors of the shapes of the batch's first sample
         checkSample(order[k], 'an input', x, inputs[1])
         checkSample(order[k], 'a target', y, targets[1])
         inputs[#inputs + 1], targets[#targets + 1], labels[#labels + 1] = x, y, lab
      end
      if self.device ~= 'cpu' then
         return T.stack(inputs, 1):to(self.device), T.stack(targets, 1):to(self.device), labels
      end
      return T.stack(inputs, 1), T.stack(targets, 1), labels
   end
end

local function workerIter(self, order)
   local ds, B = self.dataset, self.batchSize
   local c, h, w = ds.shape[1], ds.shape[2], ds.shape[3]
   local n = #order
   local paths = ffi.new('const char *[?]', math.max(n, 1))
   local labels = ffi.new('int32_t[?]', math.max(n, 1))
   local keep = {rawget(ds, '_pathBlob')} -- the packed paths, or each path string
   for k = 1, n do
      local path, lab = sampleAt(ds, order[k], 'Loader')
      if type(path) == 'string' then keep[#keep + 1] = path end
      paths[k - 1] = path
      labels[k - 1] = lab - 1
   end
   if not self._cl then
      local cl = C.sl_loader_new(self.workers, self.depth, ds.format, c, h, w, ds.nBins, ds.Ts, ds.mode, ds.classes)
      if cl == nil then cfail() end
      -- the slots' buffers outlive the worker threads that write into them
      local slots = {}
      self._cl = ffi.gc(cl, function(p)
         C.sl_loader_free(p)
         slots = nil
      end)
      self._slots = slots
   end
   if ds.prepare then ds:prepare() end
   local cl = self._cl
   local onDevice = self.device ~= 'cpu'
   local function provide(slot)
      if onDevice then
         -- pinned buffers, made once per slot and handed back after each copy
         local pin = self._slots[slot]
         if not pin then
            local cuda = require 'slayer.cuda'
            pin = {cuda.pinnedBuffer(B * c * h * w * ds.nBins), cuda.pinnedBuffer(B * ds.classes)}
            self._slots[slot] = pin
         end
         if C.sl_loader_provide(cl, slot, pin[1], pin[2]) ~= 0 then cfail() end
         return
      end
      local input = T.empty({B, c, h, w, ds.nBins})
      local target = T.empty({B, ds.classes, 1, 1, 1})
      self._slots[slot] = {input, target}
      if C.sl_loader_provide(cl, slot, input:data(), target:data()) ~= 0 then cfail() end
   end
   -- the slot of the last device batch goes back to the workers once its
   -- copy has finished (checked when the next batch is taken)
   local function release()
      local p = self._pending
      if p then
         self._pending = nil
         require('slayer.cuda').waitEvent(p.event)
         provide(p.slot)
      end
   end
   if C.sl_loader_start(cl, n, paths, labels, B) ~= 0 then cfail() end
   for s = 0, self.depth - 1 do
      if not self._slots[s] then provide(s) end
   end
   release()
   local pos = 0
   local slotOut, count = ffi.new('int[1]'), ffi.new('int[1]')
   return function()
      local _ = keep -- the file names stay alive for the epoch
      if onDevice and self.depth == 1 then release() end -- the next batch needs that same slot
      if C.sl_loader_next(cl, slotOut, count) ~= 0 then L.raise('Loader: ' .. L.lastError()) end
      local slot = slotOut[0]
      if slot < 0 then return nil end
      local m = count[0]
      local input, target
      if onDevice then
         local pin = self._slots[slot]
         input, target = toDevice(self, pin[1], pin[2], {m, c, h, w, ds.nBins}, {m, ds.classes, 1, 1, 1})
         release()
         self._pending = {slot = slot, event = require('slayer.cuda').recordEvent()}
      else
         input, target = self._slots[slot][1], self._slots[slot][2]
         provide(slot)
         if m < B then input, target = input:narrow(1, 1, m), target:narrow(1, 1, m) end
      end
      local lab = {}
      for k = 1, m do lab[k] = ds.labels[order[pos + k]] end
      pos = pos + m
      return input, target, lab
   end
end

--- Iterate over one epoch: for input, target, labels in loader:iter() do
function Loader:iter()
   self.epoch = self.epoch + 1
   local order = self:order(self.epoch)
   if usesWorkers(self) then return workerIter(self, order) end
   return lazyIter(self, order)
end

---------------------------------------------------------------------------
-- augmentation
---------------------------------------------------------------------------

--- Event jitter for a batch (N, C, H, W, T): every sample moved by a random
-- whole number of pixels in [-pixels, pixels] along H and W (zeros shifted
-- in), drawn from snn's seeded generator.  Returns a new tensor.
function M.jitter(input, pixels)
   if not T.isTensor(input) or input:dim() ~= 5 then
      fail('jitter', 'expected a 5-D (N, C, H, W, T) batch, got ' .. (T.isTensor(input) and T.shapeStr(input) or type(input)))
   end
   if type(pixels) ~= 'number' or pixels < 0 or pixels % 1 ~= 0 then
      fail('jitter', 'expected a non-negative whole number of pixels, got ' .. L.valueStr(pixels))
   end
   if pixels == 0 then return input end
   local out = T.zeros(input:shape(), input.device)
   local H, W = input:size(3), input:size(4)
   local r = T.rand({input:size(1), 2}):totable()
   for n = 1, input:size(1) do
      local dy = math.floor(r[2 * n - 1] * (2 * pixels + 1)) - pixels
      local dx = math.floor(r[2 * n] * (2 * pixels + 1)) - pixels
      local h, w = H - math.abs(dy), W - math.abs(dx)
      if h > 0 and w > 0 then
         out:select(1, n):narrow(2, math.max(dy, 0) + 1, h):narrow(3, math.max(dx, 0) + 1, w)
            :copy(input:select(1, n):narrow(2, math.max(-dy, 0) + 1, h):narrow(3, math.max(-dx, 0) + 1, w))
      end
   end
   return out
end

return M
