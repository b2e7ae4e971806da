--[[
snn.io -- spike events, spike files, binning, images (SPEC.md section 16).

    local ev = snn.io.read2Dspikes('1.bs2')          -- ev.n events
    print(ev.x[0], ev.y[0], ev.p[0], ev.t[0])         -- 0-based FFI arrays, t in ms
    local s = ev:toSpikeTensor(T.zeros({2, 34, 34, 300}), 1)
    snn.io.encode2Dspikes('copy.bs2', ev)
    snn.io.raster(s, 'raster.png');  snn.io.animTD(ev, 'events.gif')

Events hold x, y (nil for 1-D), p as int32 arrays and t (ms) as a double
array, all 0-based FFI arrays owned by the event.  As the reference's
event(), polarities are shifted so that the smallest is 0 (on the event's
own copy; the caller's arrays are never changed).

Files are parsed and written in C.  Writers round half to even like the
reference but raise an error for a value its field cannot hold (the
reference wraps silently), and fix the reference's encoder bugs for .bs1
ids >= 256 and .bs3 y >= 256.  Every file is written to path.tmp and
renamed, so a failed write leaves no half file.
]]
local ffi = require 'ffi'
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'

local C = L.C
local M = {}

local function fail(fname, msg, level) error(fname .. ': ' .. msg, (level or 2) + 1) end
local function cfail(level) error(L.lastError(), (level or 2) + 1) end

local int32arr, doublearr = ffi.typeof('int32_t[?]'), ffi.typeof('double[?]')

---------------------------------------------------------------------------
-- events
---------------------------------------------------------------------------

local Event = {}
Event.__index = Event
M.Event = Event

local function isArrayLike(v) return type(v) == 'table' or type(v) == 'cdata' end

-- copy n values of v (Lua table, 1-based, or FFI array, 0-based) into a new array
local function copyInts(v, n, fname, name)
   local out = int32arr(math.max(n, 1))
   if type(v) == 'table' then
      for i = 1, n do
         local x = v[i]
         if type(x) ~= 'number' then fail(fname, name .. '[' .. i .. '] is not a number', 4) end
         out[i - 1] = x >= 0 and math.floor(x) or math.ceil(x) -- numpy astype(int) truncates
      end
   else
      for i = 0, n - 1 do
         local x = tonumber(v[i])
         out[i] = x >= 0 and math.floor(x) or math.ceil(x)
      end
   end
   return out
end

local function copyDoubles(v, n, fname, name)
   local out = doublearr(math.max(n, 1))
   if type(v) == 'table' then
      for i = 1, n do
         if type(v[i]) ~= 'number' then fail(fname, name .. '[' .. i .. '] is not a number', 4) end
         out[i - 1] = v[i]
      end
   else
      for i = 0, n - 1 do out[i] = tonumber(v[i]) end
   end
   return out
end

local function newEvent(n, x, y, p, t)
   -- p <- p - min(p), as the reference's event()
   if n > 0 then
      local pmin = p[0]
      for i = 1, n - 1 do if p[i] < pmin then pmin = p[i] end end
      if pmin ~= 0 then for i = 0, n - 1 do p[i] = p[i] - pmin end end
   end
   return setmetatable({n = n, dim = y and 2 or 1, x = x, y = y, p = p, t = t}, Event)
end
M._newEvent = newEvent

--- event(x, y, p, t[, n]): x, y, p, t as Lua tables (1-based) or FFI arrays
-- (0-based, n required); y nil for 1-D events; t in ms.
function M.event(x, y, p, t, n)
   local fname = 'event'
   if not isArrayLike(x) or not isArrayLike(p) or not isArrayLike(t) or (y ~= nil and not isArrayLike(y)) then
      fail(fname, 'expected x, y (or nil), p and t as Lua tables or FFI arrays', 2)
   end
   if n == nil then
      if type(x) ~= 'table' then fail(fname, 'pass the event count n with FFI arrays', 2) end
      n = #x
      if #p ~= n or #t ~= n or (y and #y ~= n) then
         fail(fname, 'x, y, p and t must have the same length (x has ' .. n .. ', p ' .. #p .. ', t ' .. #t
            .. (y and (', y ' .. #y) or '') .. ')', 2)
      end
   end
   if n == 0 then fail(fname, 'an event list cannot be empty (as the reference)', 2) end
   return newEvent(n, copyInts(x, n, fname, 'x'), y and copyInts(y, n, fname, 'y') or nil,
      copyInts(p, n, fname, 'p'), copyDoubles(t, n, fname, 't'))
end

local function range(arr, n)
   local lo, hi = math.huge, -math.huge
   for i = 0, n - 1 do
      local v = tonumber(arr[i])
      if v < lo then lo = v end
      if v > hi then hi = v end
   end
   return lo, hi
end

local MODES = {OR = 0, SUM = 1, COUNT = 2}

--- Bin into tensor (P, H, W, T) for 2-D events or (P, 1, X, T) for 1-D, in
-- place, and return it.  binningMode 'OR' (default) or 'SUM' set the bin
-- to 1/samplingTime (the reference's SUM does not accumulate repeated
-- events); 'COUNT' adds 1/samplingTime per event.  randomShift draws the
-- reference's start offset from snn's seeded generator.
function Event:toSpikeTensor(tensor, samplingTime, randomShift, binningMode)
   local fname = 'toSpikeTensor'
   samplingTime = samplingTime or 1
   binningMode = binningMode or 'OR'
   if not T.isTensor(tensor) then fail(fname, 'expected a tensor to fill, got ' .. type(tensor), 2) end
   local target = tensor
   if tensor:dim() == 5 and tensor:size(1) == 1 then target = tensor:view({tensor:size(2), tensor:size(3), tensor:size(4), tensor:size(5)}) end
   if target:dim() ~= 4 then
      fail(fname, 'expected a (P, H, W, T) tensor (P, 1, X, T for 1-D events), got ' .. T.shapeStr(tensor), 2)
   end
   if self.dim == 1 and target:size(2) ~= 1 then
      fail(fname, '1-D events need a (P, 1, X, T) tensor, got ' .. T.shapeStr(tensor), 2)
   end
   if target.device ~= 'cpu' or not target:isContiguous() then fail(fname, 'expected a contiguous CPU tensor', 2) end
   local mode = MODES[tostring(binningMode):upper()]
   if not mode then fail(fname, "unsupported binningMode '" .. tostring(binningMode) .. "' (OR, SUM or COUNT)", 2) end
   if type(samplingTime) ~= 'number' or not (samplingTime > 0) then
      fail(fname, 'samplingTime must be positive, got ' .. tostring(samplingTime), 2)
   end
   local tSt = 0
   if randomShift then
      local Tn = target:size(4)
      local tmin, tmax = range(self.t, self.n)
      local function trunc(v) return v >= 0 and math.floor(v) or math.ceil(v) end
      local bound = math.max(trunc(tmin / samplingTime), trunc(tmax / samplingTime) - Tn, Tn - trunc(tmax / samplingTime), 1)
      tSt = math.floor(T.rand({1}):item() * bound)
      if tSt >= bound then tSt = bound - 1 end
   end
   if C.sl_events_to_tensor(target._c, self.n, self.x, self.y, self.p, self.t, samplingTime, tSt, mode) ~= 0 then
      cfail(2)
   end
   return tensor
end

--- A new tensor with the events binned (OR), sized from the events unless
-- dim is given: 1-D (P, X, T), 2-D (P, H, W, T).
function Event:toSpikeArray(samplingTime, dim)
   samplingTime = samplingTime or 1
   local function r(v) return math.floor(v + 0.5) end
   if dim == nil then
      local _, pmax = range(self.p, self.n)
      local _, xmax = range(self.x, self.n)
      local _, tmax = range(self.t, self.n)
      if self.dim == 1 then
         dim = {r(pmax + 1), r(xmax + 1), r(tmax / samplingTime + 1)}
      else
         local _, ymax = range(self.y, self.n)
         dim = {r(pmax + 1), r(ymax + 1), r(xmax + 1), r(tmax / samplingTime + 1)}
      end
   end
   if self.dim == 1 then
      local frame = T.zeros({dim[1], 1, dim[2], dim[3]})
      return self:toSpikeTensor(frame, samplingTime):view({dim[1], dim[2], dim[3]})
   end
   return self:toSpikeTensor(T.zeros({dim[1], dim[2], dim[3], dim[4]}), samplingTime)
end

function Event:__tostring()
   local tmin, tmax = range(self.t, self.n)
   return string.format('snn.io.event(%d events, %d-D, t %.3f..%.3f ms)', self.n, self.dim, tmin, tmax)
end

--- Events at the positive entries of a (P, X, T) or (P, Y, X, T) tensor,
-- in row-major order, with t = bin * samplingTime.
function M.spikeArrayToEvent(spikeMat, samplingTime)
   samplingTime = samplingTime or 1
   if not T.isTensor(spikeMat) or (spikeMat:dim() ~= 3 and spikeMat:dim() ~= 4) then
      fail('spikeArrayToEvent', 'expected a 3-D (P, X, T) or 4-D (P, Y, X, T) tensor, got '
         .. (T.isTensor(spikeMat) and T.shapeStr(spikeMat) or type(spikeMat)), 2)
   end
   local s = T._contig(spikeMat:cpu())
   local shape, d = s:shape(), s:data()
   local n = 0
   for i = 0, s:numel() - 1 do if d[i] > 0 then n = n + 1 end end
   if n == 0 then fail('spikeArrayToEvent', 'the tensor holds no spikes', 2) end
   local x, p, t = int32arr(n), int32arr(n), doublearr(n)
   local y = #shape == 4 and int32arr(n) or nil
   local k = 0
   local Tn = shape[#shape]
   local X = shape[#shape - 1]
   local Y = #shape == 4 and shape[2] or 1
   for i = 0, s:numel() - 1 do
      if d[i] > 0 then
         local tb = i % Tn
         local rest = (i - tb) / Tn
         local xi = rest % X
         rest = (rest - xi) / X
         if y then
            y[k] = rest % Y
            rest = (rest - y[k]) / Y
         end
         x[k], p[k], t[k] = xi, rest, tb * samplingTime
         k = k + 1
      end
   end
   return newEvent(n, x, y, p, t)
end

---------------------------------------------------------------------------
-- spike files
---------------------------------------------------------------------------

local function readFile(fname, path, format)
   if type(path) ~= 'string' then fail(fname, 'expected a file path, got ' .. type(path), 3) end
   local n = tonumber(C.sl_spikefile_count(path, format))
   if n < 0 then cfail(3) end
   local m = math.max(n, 1)
   local x, y, p, t = int32arr(m), int32arr(m), int32arr(m), doublearr(m)
   local t2 = format == 3 and doublearr(m) or nil
   if C.sl_spikefile_read(path, format, n, x, y, p, t, t2) ~= 0 then cfail(3) end
   return n, x, y, p, t, t2
end

function M.read1Dspikes(path)
   local n, x, _, p, t = readFile('read1Dspikes', path, 0)
   if n == 0 then fail('read1Dspikes', "'" .. path .. "' holds no events", 2) end
   return newEvent(n, x, nil, p, t)
end

function M.read2Dspikes(path)
   local n, x, y, p, t = readFile('read2Dspikes', path, 1)
   if n == 0 then fail('read2Dspikes', "'" .. path .. "' holds no events", 2) end
   return newEvent(n, x, y, p, t)
end

function M.read3Dspikes(path)
   local n, x, y, p, t = readFile('read3Dspikes', path, 2)
   if n == 0 then fail('read3Dspikes', "'" .. path .. "' holds no events", 2) end
   return newEvent(n, x, y, p, t)
end

--- Returns neuronID, tStart (ms), tEnd (ms), nSpikes as 0-based FFI arrays,
-- and the record count.
function M.read1DnumSpikes(path)
   local n, id, count, _, tStart, tEnd = readFile('read1DnumSpikes', path, 3)
   return id, tStart, tEnd, count, n
end

local function checkEvent(fname, ev, dim)
   if getmetatable(ev) ~= Event then fail(fname, 'expected an snn.io event, got ' .. type(ev), 3) end
   if dim and ev.dim ~= dim then
      fail(fname, 'expected ' .. dim .. '-D events, got ' .. ev.dim .. '-D', 3)
   end
end

function M.encode1Dspikes(path, ev)
   checkEvent('encode1Dspikes', ev, 1)
   if C.sl_spikefile_write(path, 0, ev.n, ev.x, nil, ev.p, ev.t, nil) ~= 0 then cfail(2) end
end

function M.encode2Dspikes(path, ev)
   checkEvent('encode2Dspikes', ev, 2)
   if C.sl_spikefile_write(path, 1, ev.n, ev.x, ev.y, ev.p, ev.t, nil) ~= 0 then cfail(2) end
end

function M.encode3Dspikes(path, ev)
   checkEvent('encode3Dspikes', ev, 2)
   if C.sl_spikefile_write(path, 2, ev.n, ev.x, ev.y, ev.p, ev.t, nil) ~= 0 then cfail(2) end
end

--- encode1DnumSpikes(path, nID, tSt, tEn, nSp[, n]): Lua tables or FFI
-- arrays (then n is required); times in ms.
function M.encode1DnumSpikes(path, nID, tSt, tEn, nSp, n)
   local fname = 'encode1DnumSpikes'
   if n == nil then
      if type(nID) ~= 'table' then fail(fname, 'pass the record count n with FFI arrays', 2) end
      n = #nID
   end
   local id = copyInts(nID, n, fname, 'nID')
   local cnt = copyInts(nSp, n, fname, 'nSp')
   local ts, te = copyDoubles(tSt, n, fname, 'tSt'), copyDoubles(tEn, n, fname, 'tEn')
   if C.sl_spikefile_write(path, 3, n, id, cnt, nil, ts, te) ~= 0 then cfail(2) end
end

--- readNpSpikes(path, fmt, timeUnit): 'xypt' arrays of N x 3 (x, p, t) or
-- N x 4 (x, y, p, t); t is scaled by timeUnit * 1000 to ms.
function M.readNpSpikes(path, fmt, timeUnit)
   local fname = 'readNpSpikes'
   fmt, timeUnit = fmt or 'xypt', timeUnit or 1e-3
   if fmt ~= 'xypt' then fail(fname, "fmt='" .. tostring(fmt) .. "' not implemented", 2) end
   local data, rows, cols = ffi.new('double*[1]'), ffi.new('int64_t[1]'), ffi.new('int64_t[1]')
   if C.sl_npy_read(path, data, rows, cols) ~= 0 then cfail(2) end
   local d = ffi.gc(data[0], C.sl_npy_free)
   local n, w = tonumber(rows[0]), tonumber(cols[0])
   if w ~= 3 and w ~= 4 then
      fail(fname, "'" .. path .. "' holds " .. w .. ' columns; expected nEvents x 3 (x, p, t) or x 4 (x, y, p, t)', 2)
   end
   if n == 0 then fail(fname, "'" .. path .. "' holds no events", 2) end
   local x, y, p, t = int32arr(n), w == 4 and int32arr(n) or nil, int32arr(n), doublearr(n)
   local function trunc(v) return v >= 0 and math.floor(v) or math.ceil(v) end
   for i = 0, n - 1 do
      local row = d + i * w
      x[i] = trunc(row[0])
      if w == 4 then
         y[i], p[i], t[i] = trunc(row[1]), trunc(row[2]), row[3] * timeUnit * 1e3
      else
         p[i], t[i] = trunc(row[1]), row[2] * timeUnit * 1e3
      end
   end
   return newEvent(n, x, y, p, t)
end

--- encodeNpSpikes(path, ev): float64 N x 3 (x, p, t) or N x 4 (x, y, p, t)
-- with t in ms, as the reference writes (timeUnit is ignored there too).
function M.encodeNpSpikes(path, ev, fmt, timeUnit)
   checkEvent('encodeNpSpikes', ev)
   if (fmt or 'xypt') ~= 'xypt' then fail('encodeNpSpikes', "fmt='" .. tostring(fmt) .. "' not implemented", 2) end
   local w = ev.dim == 1 and 3 or 4
   local buf = doublearr(math.max(ev.n * w, 1))
   for i = 0, ev.n - 1 do
      local row = buf + i * w
      row[0] = ev.x[i]
      if w == 4 then row[1], row[2], row[3] = ev.y[i], ev.p[i], ev.t[i]
      else row[1], row[2] = ev.p[i], ev.t[i] end
   end
   if C.sl_npy_write(path, buf, ev.n, w) ~= 0 then cfail(2) end
end

---------------------------------------------------------------------------
-- IDX files and saccades
---------------------------------------------------------------------------

--- MNIST/Fashion-MNIST IDX file (gzip'd or plain) as a float32 tensor:
-- images {N, 28, 28} with values 0..255, labels {N}.
function M.readIdx(path)
   if type(path) ~= 'string' then fail('readIdx', 'expected a file path, got ' .. type(path), 2) end
   local p = C.sl_idx_read(path)
   if p == nil then cfail(2) end
   return T._wrap(p, 'readIdx')
end

M.saccadeDefaults = {
   width = 34, height = 34, -- sensor, pixels (28x28 images plus the path)
   dt = 1,                  -- simulation step, ms (event times are jittered within it)
   saccade = 100,           -- each of three saccades, ms (300 ms in all)
   threshold = 0.27,        -- contrast threshold, natural-log units
   mismatch = 0.05,         -- spread of per-pixel thresholds
   refractory = 2,          -- ms
   bg = 0.08,               -- intensity of black on the monitor
   noise = 0,               -- background events per pixel per second
   amplitude = 5,           -- path size, pixels
   path = {{0, 0}, {0.5, 1}, {1, 0}}, -- triangle vertices, in units of amplitude
   seed = 0,
}

local function saccadeOptions(fname, opts)
   opts = opts or {}
   local o = {}
   for k, v in pairs(M.saccadeDefaults) do o[k] = v end
   for k, v in pairs(opts) do
      if o[k] == nil and k ~= 'scale' then fail(fname, "unknown option '" .. tostring(k) .. "'", 3) end
      o[k] = v
   end
   local c = ffi.new('sl_saccade_opts')
   c.width, c.height, c.dt, c.saccade, c.threshold = o.width, o.height, o.dt, o.saccade, o.threshold
   c.mismatch, c.refractory, c.bg, c.noise, c.amplitude = o.mismatch, o.refractory, o.bg, o.noise, o.amplitude
   c.ax, c.ay, c.bx, c.by, c.cx, c.cy = o.path[1][1], o.path[1][2], o.path[2][1], o.path[2][2], o.path[3][1], o.path[3][2]
   return c, o, opts.scale or 255
end

--- Convert a 2-D intensity image (tensor {H, W}, values 0..255 or 0..1 when
-- opts.scale = 1) to an ON/OFF event stream recorded by a moving DVS sensor
-- (see csrc/ops/saccade.c for the model).  Deterministic for opts.seed.
function M.saccade(image, opts)
   local fname = 'saccade'
   if not T.isTensor(image) or image:dim() ~= 2 then
      fail(fname, 'expected a 2-D {H, W} image tensor, got ' .. (T.isTensor(image) and T.shapeStr(image) or type(image)), 2)
   end
   local c, o, scale = saccadeOptions(fname, opts)
   local img = T._contig((image:cpu() / scale):clamp(0, 1))
   local ev = C.sl_saccade(img:data(), image:size(1), image:size(2), c, o.seed)
   if ev == nil then cfail(2) end
   ev = ffi.gc(ev, C.sl_events_free)
   local n = tonumber(C.sl_events_count(ev))
   local m = math.max(n, 1)
   local x, y, p, t = int32arr(m), int32arr(m), int32arr(m), doublearr(m)
   ffi.copy(x, C.sl_events_x(ev), 4 * n)
   ffi.copy(y, C.sl_events_y(ev), 4 * n)
   ffi.copy(p, C.sl_events_p(ev), 4 * n)
   ffi.copy(t, C.sl_events_t(ev), 8 * n)
   -- polarities are 0 (OFF) and 1 (ON) already; no shift
   return setmetatable({n = n, dim = 2, x = x, y = y, p = p, t = t}, Event)
end

--- Convert images {N, H, W} and write image i to paths[i] as a .bs2 file,
-- in parallel C threads; image i uses seed seeds[i] (default opts.seed + i).
-- The same events as encode2Dspikes(paths[i], saccade(images[i], ...)).
function M.saccadeToFiles(images, paths, opts, seeds)
   local fname = 'saccadeToFiles'
   if not T.isTensor(images) or images:dim() ~= 3 then
      fail(fname, 'expected a 3-D {N, H, W} image tensor, got ' .. (T.isTensor(images) and T.shapeStr(images) or type(images)), 2)
   end
   local n = images:size(1)
   if type(paths) ~= 'table' or #paths ~= n then fail(fname, 'expected one output path per image (' .. n .. ')', 2) end
   local c, o, scale = saccadeOptions(fname, opts)
   local img = T._contig((images:cpu() / scale):clamp(0, 1))
   local cpaths = ffi.new('const char *[?]', math.max(n, 1))
   local cseeds = ffi.new('uint64_t[?]', math.max(n, 1))
   for i = 1, n do
      cpaths[i - 1] = paths[i]
      cseeds[i - 1] = seeds and seeds[i] or (o.seed + i)
   end
   if C.sl_saccade_files(img:data(), n, images:size(2), images:size(3), c, cseeds, cpaths) ~= 0 then cfail(2) end
   return paths
end

---------------------------------------------------------------------------
-- pictures
---------------------------------------------------------------------------

local function writePng(path, w, h, rgb)
   if C.sl_png_write(path, w, h, rgb) ~= 0 then cfail(3) end
end

-- rows x bins occupancy of one spike source, as a Lua array of sets
local function rasterOf(src, samplingTime, fname)
   if getmetatable(src) == Event then
      local _, tmax = range(src.t, src.n)
      local _, pmax = range(src.p, src.n)
      local _, xmax = range(src.x, src.n)
      local ymax = 0
      if src.y then _, ymax = range(src.y, src.n) end
      local X, Y = xmax + 1, ymax + 1
      local rows, bins = (pmax + 1) * X * Y, math.floor(tmax / samplingTime) + 1
      local hits = {}
      for i = 0, src.n - 1 do
         local r = (src.p[i] * Y + (src.y and src.y[i] or 0)) * X + src.x[i]
         local b = math.floor(src.t[i] / samplingTime + 0.5)
         if b >= 0 and b < bins then hits[#hits + 1] = r * bins + b end
      end
      return rows, bins, hits
   elseif T.isTensor(src) then
      if src:dim() < 2 then fail(fname, 'expected a tensor with a time dimension, got ' .. T.shapeStr(src), 4) end
      local s = T._contig(src:detach():cpu())
      local bins = s:size(-1)
      local rows = s:numel() / bins
      local d, hits = s:data(), {}
      for i = 0, s:numel() - 1 do if d[i] ~= 0 then hits[#hits + 1] = i end end
      return rows, bins, hits
   end
   fail(fname, 'expected a spike tensor or an snn.io event, got ' .. type(src), 4)
end

local PANEL_COLOURS = {{0, 0, 0}, {200, 30, 30}, {30, 60, 200}, {20, 140, 40}}

--- Spike raster (neuron vs time) as a PNG.  src: a spike tensor (all but
-- the last dimension flattened into neurons, time last), an event stream,
-- or a list of those drawn side by side (e.g. {output, target}).
-- opts: samplingTime (events, ms; default 1), maxWidth (default 1600),
-- maxHeight (default 1000) -- larger rasters merge bins or neurons;
-- minHeight (default 200) -- rasters of few neurons draw each on several
-- pixel rows.
function M.raster(src, path, opts)
   local fname = 'raster'
   opts = opts or {}
   if type(path) ~= 'string' then fail(fname, 'expected an output path, got ' .. type(path), 2) end
   local list = (type(src) == 'table' and not T.isTensor(src) and getmetatable(src) ~= Event) and src or {src}
   if #list == 0 then fail(fname, 'nothing to draw', 2) end
   local panels = {}
   local maxW, maxH = opts.maxWidth or 1600, opts.maxHeight or 1000
   for i, s in ipairs(list) do
      local rows, bins, hits = rasterOf(s, opts.samplingTime or 1, fname)
      local bx = math.max(1, math.ceil(bins / math.max(1, math.floor(maxW / #list))))
      local ry = math.max(1, math.ceil(rows / maxH))
      -- few neurons: several pixel rows each, so small rasters stay readable
      local sy = ry == 1 and math.max(1, math.min(8, math.floor((opts.minHeight or 200) / rows))) or 1
      panels[i] = {rows = rows, bins = bins, hits = hits, w = math.ceil(bins / bx), h = math.ceil(rows / ry) * sy,
         bx = bx, ry = ry, sy = sy}
   end
   local gap, margin = 8, 4
   local W, Hh = margin, 0
   for _, p in ipairs(panels) do
      W = W + p.w + gap
      Hh = math.max(Hh, p.h)
   end
   W = W - gap + margin
   Hh = Hh + 2 * margin
   local rgb = ffi.new('unsigned char[?]', W * Hh * 3)
   ffi.fill(rgb, W * Hh * 3, 255)
   local x0 = margin
   for i, p in ipairs(panels) do
      local col = PANEL_COLOURS[(i - 1) % #PANEL_COLOURS + 1]
      -- light frame around the panel
      for yy = margin - 1, margin + p.h do
         for _, xx in ipairs({x0 - 1, x0 + p.w}) do
            if yy >= 0 and yy < Hh and xx >= 0 and xx < W then
               local o = (yy * W + xx) * 3
               rgb[o], rgb[o + 1], rgb[o + 2] = 190, 190, 190
            end
         end
      end
      for _, h in ipairs(p.hits) do
         local r, b = math.floor(h / p.bins), h % p.bins
         local xx = x0 + math.floor(b / p.bx)
         for k = 0, math.max(p.sy - 2, 0) do -- leave a gap between neurons when scaled
            local yy = margin + math.floor(r / p.ry) * p.sy + k
            local o = (yy * W + xx) * 3
            rgb[o], rgb[o + 1], rgb[o + 2] = col[1], col[2], col[3]
         end
      end
      x0 = x0 + p.w + gap
   end
   writePng(path, W, Hh, rgb)
   return path
end

--- Animated GIF of an event stream (the reference's showTD/animTD, to a
-- file).  2-D events: frames of 1000/frameRate ms, ON events (p = 1) red,
-- OFF (p = 0) blue, other polarities green, on black.  1-D events: a
-- raster (time across, neuron down) that grows frame by frame.
-- opts: frameRate (24), scale (pixels per sensor pixel; default 4).
function M.animTD(ev, path, opts)
   local fname = 'animTD'
   opts = opts or {}
   checkEvent(fname, ev)
   if type(path) ~= 'string' then fail(fname, 'expected an output path, got ' .. type(path), 2) end
   local frameRate = opts.frameRate or 24
   if type(frameRate) ~= 'number' or not (frameRate > 0) then fail(fname, 'frameRate must be positive', 2) end
   local interval = 1000 / frameRate
   local tmin, tmax = range(ev.t, ev.n)
   local minFrame = math.floor(tmin / interval)
   local nFrames = math.ceil(tmax / interval) - minFrame
   if nFrames < 1 then nFrames = 1 end
   local palette = ffi.new('unsigned char[15]', {0, 0, 0, 60, 90, 255, 255, 60, 60, 60, 220, 60, 255, 255, 255})
   local _, xmax = range(ev.x, ev.n)
   local W0, H0
   if ev.dim == 2 then
      local _, ymax = range(ev.y, ev.n)
      W0, H0 = xmax + 1, ymax + 1
   else
      W0, H0 = math.min(400, math.ceil(tmax) + 1), xmax + 1
   end
   local scale = opts.scale or math.max(1, math.floor(256 / math.max(W0, H0)))
   local W, Hh = W0 * scale, H0 * scale
   local frames = ffi.new('unsigned char[?]', W * Hh * nFrames)
   local function plot(f, px, py, colour)
      for dy = 0, scale - 1 do
         local base = f * W * Hh + (py * scale + dy) * W + px * scale
         for dx = 0, scale - 1 do frames[base + dx] = colour end
      end
   end
   for i = 0, ev.n - 1 do
      local colour = ev.p[i] == 1 and 2 or (ev.p[i] == 0 and 1 or 3)
      local f = math.floor(ev.t[i] / interval) - minFrame
      if ev.dim == 2 then
         if f >= 0 and f < nFrames then plot(f, ev.x[i], ev.y[i], colour) end
      else
         local px = math.floor(ev.t[i] / math.max(tmax, 1) * (W0 - 1))
         for g = math.max(f, 0), nFrames - 1 do plot(g, px, ev.x[i], colour) end
      end
   end
   local delay = math.max(1, math.floor(100 / frameRate + 0.5))
   if C.sl_gif_write(path, W, Hh, nFrames, frames, palette, 5, delay) ~= 0 then cfail(2) end
   return path
end

--- Write an RGB image (a {3, H, W} or {H, W} tensor with values 0..1) as PNG.
function M.imageToPng(img, path)
   if not T.isTensor(img) or (img:dim() ~= 2 and img:dim() ~= 3) then
      fail('imageToPng', 'expected a {H, W} or {3, H, W} tensor', 2)
   end
   local s = T._contig(img:detach():cpu():clamp(0, 1))
   local H, W = s:size(-2), s:size(-1)
   local d = s:data()
   local rgb = ffi.new('unsigned char[?]', W * H * 3)
   for y = 0, H - 1 do
      for x = 0, W - 1 do
         for c = 0, 2 do
            local v = s:dim() == 3 and d[(c * H + y) * W + x] or d[y * W + x]
            rgb[(y * W + x) * 3 + c] = math.floor(v * 255 + 0.5)
         end
      end
   end
   writePng(path, W, H, rgb)
   return path
end

return M
