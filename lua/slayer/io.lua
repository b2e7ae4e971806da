--[[
snn.io -- spike events, spike files, binning, images (SPEC.md section 16).

    local ev = snn.io.read2Dspikes('1.bs2')          -- ev.n events
    print(ev.x[0], ev.y[0], ev.p[0], ev.t[0])         -- 0-based FFI arrays, t in ms
    local s = ev:toSpikeTensor(T.zeros({2, 34, 34, 300}), 1)
    snn.io.encode2Dspikes('copy.bs2', ev)
    snn.io.raster(s, 'raster.png');  snn.io.animTD(ev, 'events.gif')  -- showTD(ev): to a temporary GIF

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

local function fail(fname, msg) L.raise(fname .. ': ' .. msg) end
local function cfail() L.raise(L.lastError()) end
-- the C error under the name of the function the user called (the PNG
-- writer, shared by raster and imageToPng, reports as 'png')
local function cfailAs(fname)
   local msg = L.lastError():gsub('^[%w_]+: ', '', 1)
   L.raise(fname .. ': ' .. msg)
end

local checkPath = L.checkPath

local isFinite, isWhole = L.isFinite, L.isWhole

local int32arr, doublearr = ffi.typeof('int32_t[?]'), ffi.typeof('double[?]')

---------------------------------------------------------------------------
-- events
---------------------------------------------------------------------------

local Event = {}
Event.__index = Event
M.Event = Event

local function isArrayLike(v) return type(v) == 'table' or type(v) == 'cdata' end

local INT32_MIN, INT32_MAX = -2 ^ 31, 2 ^ 31 - 1

-- copy n values of v (Lua table, 1-based, or FFI array, 0-based) into a new
-- array, truncated toward zero as numpy's astype(int); a value no int32
-- holds (NaN, inf, beyond +-2^31) is an error naming it
local function copyInts(v, n, fname, name)
   local out = int32arr(math.max(n, 1))
   local base = type(v) == 'table' and 1 or 0
   for i = base, n - 1 + base do
      local x = v[i]
      if type(x) == 'cdata' then x = tonumber(x) end
      if type(x) ~= 'number' then fail(fname, name .. '[' .. i .. '] is not a number (got ' .. type(x) .. ')') end
      local r = x >= 0 and math.floor(x) or math.ceil(x)
      if not (r >= INT32_MIN and r <= INT32_MAX) then
         fail(fname, name .. '[' .. i .. '] = ' .. L.valueStr(x) .. ' is not a finite value that fits in int32')
      end
      out[i - base] = r
   end
   return out
end

-- the same for times: any finite number
local function copyDoubles(v, n, fname, name)
   local out = doublearr(math.max(n, 1))
   local base = type(v) == 'table' and 1 or 0
   for i = base, n - 1 + base do
      local x = v[i]
      if type(x) == 'cdata' then x = tonumber(x) end
      if type(x) ~= 'number' then fail(fname, name .. '[' .. i .. '] is not a number (got ' .. type(x) .. ')') end
      if not isFinite(x) then fail(fname, name .. '[' .. i .. '] = ' .. L.valueStr(x) .. ' is not a finite time') end
      out[i - base] = x
   end
   return out
end

-- n given with arrays: a whole number of values, no more than an FFI array
-- or a table holds
local function checkCount(fname, n, arrays)
   if not isWhole(n, 1, INT32_MAX) then
      fail(fname, 'n must be a positive whole number of values, got ' .. L.valueStr(n))
   end
   for _, a in ipairs(arrays) do
      local len = type(a[2]) == 'table' and #a[2] or L.ffiLength(a[2])
      if len and len < n then fail(fname, 'n = ' .. n .. ' but ' .. a[1] .. ' holds ' .. len .. ' values') end
   end
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

-- An event's n, dim and arrays are plain fields a script can change; C and
-- the loops here read n values from each array, so each must hold them
-- (x, y, p int32, t double; y for 2-D events only).
local EVENT_ARRAYS = {{'x', 'int'}, {'y', 'int'}, {'p', 'int'}, {'t', 'double'}}
local function checkEvent(fname, ev, dim)
   if getmetatable(ev) ~= Event then fail(fname, 'expected an snn.io event, got ' .. type(ev)) end
   if not isWhole(ev.n, 0, INT32_MAX) then fail(fname, 'the event count n = ' .. L.valueStr(ev.n) .. ' is not valid') end
   if ev.dim ~= 1 and ev.dim ~= 2 then fail(fname, 'the event dim = ' .. L.valueStr(ev.dim) .. ' is not 1 or 2') end
   if dim and ev.dim ~= dim then
      fail(fname, 'expected ' .. dim .. '-D events, got ' .. ev.dim .. '-D')
   end
   for _, a in ipairs(EVENT_ARRAYS) do
      local name, elem = a[1], a[2]
      if name ~= 'y' or ev.dim == 2 then
         local v = ev[name]
         local ct = type(v) == 'cdata' and tostring(ffi.typeof(v)) or nil
         local what = elem == 'int' and 'int32' or elem
         if not ct or ct:sub(1, #elem + 8) ~= 'ctype<' .. elem .. ' [' then
            fail(fname, 'the event\'s ' .. name .. ' is not an array of ' .. what .. ' (got '
               .. (ct and ct:match('^ctype<(.*)>$') or type(v)) .. ')')
         end
         if L.ffiLength(v) < ev.n then
            fail(fname, 'the event\'s ' .. name .. ' holds ' .. L.ffiLength(v) .. ' values, its n is ' .. ev.n)
         end
      end
   end
end

--- event(x, y, p, t[, n]): x, y, p, t as Lua tables (1-based) or FFI arrays
-- (0-based, n required); y nil for 1-D events; t in ms.  x, y and p are
-- truncated to int32 and t must be finite: NaN, inf or a coordinate beyond
-- +-2^31 is an error.  n is checked against the length of Lua tables and
-- of FFI arrays (int32_t[?] etc.); behind a plain pointer the caller must
-- provide n values.
function M.event(x, y, p, t, n)
   local fname = 'event'
   if not isArrayLike(x) or not isArrayLike(p) or not isArrayLike(t) or (y ~= nil and not isArrayLike(y)) then
      fail(fname, 'expected x, y (or nil), p and t as Lua tables or FFI arrays')
   end
   local arrays = {{'x', x}, {'p', p}, {'t', t}, y and {'y', y} or nil}
   for _, a in ipairs(arrays) do
      if type(a[2]) == 'cdata' and not tostring(ffi.typeof(a[2])):find('[%]%*]>$') then
         fail(fname, a[1] .. ' is an FFI ' .. tostring(ffi.typeof(a[2])) .. ', expected an array or a pointer')
      end
   end
   if n == nil then
      for _, a in ipairs(arrays) do
         if type(a[2]) ~= 'table' then fail(fname, 'pass the event count n with FFI arrays') end
      end
      n = #x
      if #p ~= n or #t ~= n or (y and #y ~= n) then
         fail(fname, 'x, y, p and t must have the same length (x has ' .. n .. ', p ' .. #p .. ', t ' .. #t
            .. (y and (', y ' .. #y) or '') .. ')')
      end
      if n == 0 then fail(fname, 'an event list cannot be empty (as the reference)') end
   end
   checkCount(fname, n, arrays)
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
-- place, and return it.  binningMode 'OR' (default) sets the bin to
-- 1/samplingTime; 'SUM' adds 1/samplingTime once to every bin an event hits
-- (the reference's SUM does not accumulate repeated events; on a zero tensor
-- it equals 'OR'); 'COUNT' adds 1/samplingTime per event.  randomShift draws the
-- reference's start offset from snn's seeded generator.
function Event:toSpikeTensor(tensor, samplingTime, randomShift, binningMode)
   local fname = 'toSpikeTensor'
   checkEvent(fname, self)
   samplingTime = samplingTime or 1
   binningMode = binningMode or 'OR'
   if not T.isTensor(tensor) then fail(fname, 'expected a tensor to fill, got ' .. type(tensor)) end
   local target = tensor
   if tensor:dim() == 5 and tensor:size(1) == 1 then target = tensor:view({tensor:size(2), tensor:size(3), tensor:size(4), tensor:size(5)}) end
   if target:dim() ~= 4 then
      fail(fname, 'expected a (P, H, W, T) tensor (P, 1, X, T for 1-D events), got ' .. T.shapeStr(tensor))
   end
   if self.dim == 1 and target:size(2) ~= 1 then
      fail(fname, '1-D events need a (P, 1, X, T) tensor, got ' .. T.shapeStr(tensor))
   end
   if target.device ~= 'cpu' or not target:isContiguous() then fail(fname, 'expected a contiguous CPU tensor') end
   local mode = MODES[tostring(binningMode):upper()]
   if not mode then fail(fname, "unsupported binningMode '" .. L.valueStr(binningMode) .. "' (OR, SUM or COUNT)") end
   if not isFinite(samplingTime) or not (samplingTime > 0) then
      fail(fname, 'samplingTime must be a positive number of ms, got ' .. L.valueStr(samplingTime))
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
      cfail()
   end
   return tensor
end

--- A new tensor with the events binned (OR), sized from the events unless
-- dim is given: 1-D (P, X, T), 2-D (P, H, W, T).
function Event:toSpikeArray(samplingTime, dim)
   local fname = 'toSpikeArray'
   checkEvent(fname, self)
   samplingTime = samplingTime or 1
   if not isFinite(samplingTime) or not (samplingTime > 0) then
      fail(fname, 'samplingTime must be a positive number of ms, got ' .. L.valueStr(samplingTime))
   end
   local rank = self.dim == 1 and 3 or 4
   if dim ~= nil then
      local ok = type(dim) == 'table' and #dim == rank
      for i = 1, rank do ok = ok and isWhole(dim[i], 0, INT32_MAX) end
      if not ok then
         fail(fname, 'dim must be ' .. (rank == 3 and '{P, X, T}' or '{P, Y, X, T}') .. ' as whole numbers for '
            .. self.dim .. '-D events')
      end
   end
   -- numpy's round, half to even: max t / Ts + 1 = 2.5 gives 2 bins
   local function r(v)
      local f = math.floor(v)
      local d = v - f
      if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end
      return f
   end
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
   if not isFinite(samplingTime) or not (samplingTime > 0) then
      fail('spikeArrayToEvent', 'samplingTime must be a positive number of ms, got ' .. L.valueStr(samplingTime))
   end
   if not T.isTensor(spikeMat) or (spikeMat:dim() ~= 3 and spikeMat:dim() ~= 4) then
      fail('spikeArrayToEvent', 'expected a 3-D (P, X, T) or 4-D (P, Y, X, T) tensor, got '
         .. (T.isTensor(spikeMat) and T.shapeStr(spikeMat) or type(spikeMat)))
   end
   local s = T._contig(spikeMat:cpu())
   local shape, d = s:shape(), s:data()
   local n = 0
   for i = 0, s:numel() - 1 do if d[i] > 0 then n = n + 1 end end
   if n == 0 then fail('spikeArrayToEvent', 'the tensor holds no spikes') end
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
   if type(path) ~= 'string' then fail(fname, 'expected a file path, got ' .. type(path)) end
   local n = tonumber(C.sl_spikefile_count(path, format))
   if n < 0 then cfail() end
   local m = math.max(n, 1)
   local x, y, p, t = int32arr(m), int32arr(m), int32arr(m), doublearr(m)
   local t2 = format == 3 and doublearr(m) or nil
   if C.sl_spikefile_read(path, format, n, x, y, p, t, t2) ~= 0 then cfail() end
   return n, x, y, p, t, t2
end

function M.read1Dspikes(path)
   local n, x, _, p, t = readFile('read1Dspikes', path, 0)
   if n == 0 then fail('read1Dspikes', "'" .. path .. "' holds no events") end
   return newEvent(n, x, nil, p, t)
end

function M.read2Dspikes(path)
   local n, x, y, p, t = readFile('read2Dspikes', path, 1)
   if n == 0 then fail('read2Dspikes', "'" .. path .. "' holds no events") end
   return newEvent(n, x, y, p, t)
end

function M.read3Dspikes(path)
   local n, x, y, p, t = readFile('read3Dspikes', path, 2)
   if n == 0 then fail('read3Dspikes', "'" .. path .. "' holds no events") end
   return newEvent(n, x, y, p, t)
end

--- Returns neuronID, tStart (ms), tEnd (ms), nSpikes as 0-based FFI arrays,
-- and the record count.
function M.read1DnumSpikes(path)
   local n, id, count, _, tStart, tEnd = readFile('read1DnumSpikes', path, 3)
   return id, tStart, tEnd, count, n
end

function M.encode1Dspikes(path, ev)
   checkPath('encode1Dspikes', path)
   checkEvent('encode1Dspikes', ev, 1)
   if C.sl_spikefile_write(path, 0, ev.n, ev.x, nil, ev.p, ev.t, nil) ~= 0 then cfail() end
end

function M.encode2Dspikes(path, ev)
   checkPath('encode2Dspikes', path)
   checkEvent('encode2Dspikes', ev, 2)
   if C.sl_spikefile_write(path, 1, ev.n, ev.x, ev.y, ev.p, ev.t, nil) ~= 0 then cfail() end
end

function M.encode3Dspikes(path, ev)
   checkPath('encode3Dspikes', path)
   checkEvent('encode3Dspikes', ev, 2)
   if C.sl_spikefile_write(path, 2, ev.n, ev.x, ev.y, ev.p, ev.t, nil) ~= 0 then cfail() end
end

--- encode1DnumSpikes(path, nID, tSt, tEn, nSp[, n]): Lua tables or FFI
-- arrays (then n is required); times in ms.
function M.encode1DnumSpikes(path, nID, tSt, tEn, nSp, n)
   local fname = 'encode1DnumSpikes'
   checkPath(fname, path)
   for _, a in ipairs({{'nID', nID}, {'tSt', tSt}, {'tEn', tEn}, {'nSp', nSp}}) do
      if not isArrayLike(a[2]) then fail(fname, a[1] .. ' must be a Lua table or an FFI array, got ' .. type(a[2])) end
   end
   if n == nil then
      if type(nID) ~= 'table' then fail(fname, 'pass the record count n with FFI arrays') end
      n = #nID
   end
   checkCount(fname, n, {{'nID', nID}, {'tSt', tSt}, {'tEn', tEn}, {'nSp', nSp}})
   local id = copyInts(nID, n, fname, 'nID')
   local cnt = copyInts(nSp, n, fname, 'nSp')
   local ts, te = copyDoubles(tSt, n, fname, 'tSt'), copyDoubles(tEn, n, fname, 'tEn')
   if C.sl_spikefile_write(path, 3, n, id, cnt, nil, ts, te) ~= 0 then cfail() end
end

--- readNpSpikes(path, fmt, timeUnit): 'xypt' arrays of N x 3 (x, p, t) or
-- N x 4 (x, y, p, t); t is scaled by timeUnit * 1000 to ms.  A coordinate
-- that no int32 holds (NaN, inf, beyond +-2^31) or a non-finite time is an
-- error naming the event.
function M.readNpSpikes(path, fmt, timeUnit)
   local fname = 'readNpSpikes'
   fmt, timeUnit = fmt or 'xypt', timeUnit or 1e-3
   checkPath(fname, path)
   if fmt ~= 'xypt' then fail(fname, "fmt='" .. L.valueStr(fmt) .. "' not implemented") end
   if not isFinite(timeUnit) or not (timeUnit > 0) then
      fail(fname, 'timeUnit must be a positive number of seconds, got ' .. L.valueStr(timeUnit))
   end
   local data, rows, cols = ffi.new('double*[1]'), ffi.new('int64_t[1]'), ffi.new('int64_t[1]')
   if C.sl_npy_read(path, data, rows, cols) ~= 0 then cfail() end
   local d = ffi.gc(data[0], C.sl_npy_free)
   local n, w = tonumber(rows[0]), tonumber(cols[0])
   if w ~= 3 and w ~= 4 then
      fail(fname, "'" .. path .. "' holds " .. w .. ' columns; expected nEvents x 3 (x, p, t) or x 4 (x, y, p, t)')
   end
   if n == 0 then fail(fname, "'" .. path .. "' holds no events") end
   if n > INT32_MAX then fail(fname, "'" .. path .. "' holds " .. n .. ' events, more than 2^31 - 1') end
   local x, y, p, t = int32arr(n), w == 4 and int32arr(n) or nil, int32arr(n), doublearr(n)
   local names = w == 4 and {'x', 'y', 'p', 't'} or {'x', 'p', 't'}
   local function bad(i, c, v, what)
      fail(fname, string.format("'%s' event %d (row %d) has %s = %s; %s", path, i + 1, i, names[c + 1], L.valueStr(v),
         what))
   end
   local function trunc(v) return v >= 0 and math.floor(v) or math.ceil(v) end
   local doubleAt = L.doubleAt -- NaNs of any payload read as NaN
   local coord = {}
   for i = 0, n - 1 do
      local row = i * w
      for c = 0, w - 2 do
         local v = doubleAt(d, row + c)
         local r = trunc(v)
         if not (r >= INT32_MIN and r <= INT32_MAX) then bad(i, c, v, 'coordinates must be finite and fit in int32') end
         coord[c] = r
      end
      local tv = doubleAt(d, row + w - 1)
      if not isFinite(tv) then bad(i, w - 1, tv, 'times must be finite') end
      x[i], p[i], t[i] = coord[0], coord[w - 2], tv * timeUnit * 1e3
      if w == 4 then y[i] = coord[1] end
   end
   return newEvent(n, x, y, p, t)
end

--- encodeNpSpikes(path, ev): float64 N x 3 (x, p, t) or N x 4 (x, y, p, t)
-- with t in ms, as the reference writes: its timeUnit argument is accepted
-- and ignored (read such a file back with readNpSpikes' default, 1e-3).
function M.encodeNpSpikes(path, ev, fmt, timeUnit)
   checkPath('encodeNpSpikes', path)
   checkEvent('encodeNpSpikes', ev)
   if (fmt or 'xypt') ~= 'xypt' then fail('encodeNpSpikes', "fmt='" .. L.valueStr(fmt) .. "' not implemented") end
   if timeUnit ~= nil and (not isFinite(timeUnit) or not (timeUnit > 0)) then
      fail('encodeNpSpikes', 'timeUnit must be a positive number of seconds, got ' .. L.valueStr(timeUnit))
   end
   local w = ev.dim == 1 and 3 or 4
   local buf = doublearr(math.max(ev.n * w, 1))
   for i = 0, ev.n - 1 do
      local row = buf + i * w
      row[0] = ev.x[i]
      if w == 4 then row[1], row[2], row[3] = ev.y[i], ev.p[i], ev.t[i]
      else row[1], row[2] = ev.p[i], ev.t[i] end
   end
   if C.sl_npy_write(path, buf, ev.n, w) ~= 0 then cfail() end
end

---------------------------------------------------------------------------
-- IDX files and saccades
---------------------------------------------------------------------------

--- MNIST/Fashion-MNIST IDX file (gzip'd or plain) as a float32 tensor:
-- images {N, 28, 28} with values 0..255, labels {N}.
function M.readIdx(path)
   if type(path) ~= 'string' then fail('readIdx', 'expected a file path, got ' .. type(path)) end
   local p = C.sl_idx_read(path)
   if p == nil then cfail() end
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

-- csrc/ops/saccade.c's bound on one image's events, estimated here for the
-- noise before any work (its bound on the pixel updates is checked there)
local SACCADE_MAX_EVENTS = 2 ^ 26

local function saccadeOptions(fname, opts)
   if opts ~= nil and type(opts) ~= 'table' then fail(fname, 'expected an options table, got ' .. type(opts)) end
   opts = opts or {}
   local o = {}
   for k, v in pairs(M.saccadeDefaults) do o[k] = v end
   for k, v in pairs(opts) do
      if o[k] == nil and k ~= 'scale' then fail(fname, "unknown option '" .. L.valueStr(k) .. "'") end
      o[k] = v
   end
   local function check(k, ok, what)
      if not isFinite(o[k]) or not ok(o[k]) then
         fail(fname, "option '" .. k .. "' must be " .. what .. ', got ' .. L.valueStr(o[k]))
      end
   end
   local function positive(v) return v > 0 end
   local function nonNegative(v) return v >= 0 end
   local function any() return true end
   check('width', function(v) return isWhole(v, 1, 4096) end, 'a whole number of pixels from 1 to 4096')
   check('height', function(v) return isWhole(v, 1, 4096) end, 'a whole number of pixels from 1 to 4096')
   check('dt', positive, 'a positive number of ms')
   check('saccade', positive, 'a positive number of ms')
   check('threshold', positive, 'positive')
   check('mismatch', nonNegative, 'non-negative')
   check('refractory', nonNegative, 'a non-negative number of ms')
   check('bg', function(v) return v > 0 and v < 1 end, 'between 0 and 1 (exclusive)')
   check('noise', nonNegative, 'a non-negative rate (Hz)')
   check('amplitude', any, 'a finite number of pixels')
   check('seed', function(v) return isWhole(v, 0, 2 ^ 53) end, 'a whole number from 0 to 2^53')
   o.scale = opts.scale or 255
   check('scale', positive, 'positive (the intensity of white)')
   local path = o.path
   if type(path) ~= 'table' or #path ~= 3 then
      fail(fname, "option 'path' must hold three {x, y} vertices, got " .. (type(path) == 'table' and #path or type(path)))
   end
   for i = 1, 3 do
      local v = path[i]
      if type(v) ~= 'table' or not isFinite(v[1]) or not isFinite(v[2]) then
         fail(fname, "option 'path': vertex " .. i .. ' must be {x, y} with finite numbers')
      end
   end
   local noiseEvents = o.noise * 1e-3 * 3 * o.saccade * o.width * o.height
   if noiseEvents > SACCADE_MAX_EVENTS then
      fail(fname, string.format('noise = %g Hz would make about %.4g events, above the limit of %d', o.noise,
         noiseEvents, SACCADE_MAX_EVENTS))
   end
   local c = ffi.new('sl_saccade_opts')
   c.width, c.height, c.dt, c.saccade, c.threshold = o.width, o.height, o.dt, o.saccade, o.threshold
   c.mismatch, c.refractory, c.bg, c.noise, c.amplitude = o.mismatch, o.refractory, o.bg, o.noise, o.amplitude
   c.ax, c.ay, c.bx, c.by, c.cx, c.cy = path[1][1], path[1][2], path[2][1], path[2][2], path[3][1], path[3][2]
   return c, o, o.scale
end

-- NaN or infinite pixels have no intensity to see (the sensor model would
-- make no events from them, silently): refused.  One sum tells, without a
-- temporary the size of the images (a sum of finite pixels overflows only
-- past 3.4e38, far beyond any intensity).
local function checkFinitePixels(fname, images)
   local s = images:detach():sum():item()
   if s ~= s or s == math.huge or s == -math.huge then
      fail(fname, 'the image holds NaN or infinite (or absurdly large) pixels')
   end
end

--- Convert a 2-D intensity image (tensor {H, W}, values 0..255 or 0..1 when
-- opts.scale = 1) to an ON/OFF event stream recorded by a moving DVS sensor
-- (see csrc/ops/saccade.c for the model).  Deterministic for opts.seed.
-- Options are range-checked (width and height 1..4096); one image may take
-- at most 2.5e8 pixel updates (3 * saccade / dt time steps times width *
-- height: about 8 s) and make at most 2^26 events.
function M.saccade(image, opts)
   local fname = 'saccade'
   if not T.isTensor(image) or image:dim() ~= 2 or image:numel() == 0 then
      fail(fname, 'expected a non-empty 2-D {H, W} image tensor, got '
         .. (T.isTensor(image) and T.shapeStr(image) or type(image)))
   end
   checkFinitePixels(fname, image)
   local c, o, scale = saccadeOptions(fname, opts)
   local img = T._contig((image:cpu() / scale):clamp(0, 1))
   local ev = C.sl_saccade(img:data(), image:size(1), image:size(2), c, o.seed)
   T._anchor(img)
   if ev == nil then cfail() end
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
-- All or nothing: the files are renamed into place only once every one is
-- written, so a failure (an unwritable path, events out of the .bs2 range)
-- leaves none of them.
function M.saccadeToFiles(images, paths, opts, seeds)
   local fname = 'saccadeToFiles'
   if not T.isTensor(images) or images:dim() ~= 3 then
      fail(fname, 'expected a 3-D {N, H, W} image tensor, got ' .. (T.isTensor(images) and T.shapeStr(images) or type(images)))
   end
   local n = images:size(1)
   if n > 0 and (images:size(2) == 0 or images:size(3) == 0) then
      fail(fname, 'expected non-empty images, got ' .. T.shapeStr(images))
   end
   checkFinitePixels(fname, images)
   if type(paths) ~= 'table' or T.isTensor(paths) then
      fail(fname, 'expected a table of output paths, got ' .. T.typeName(paths))
   end
   local seen = {}
   for i = 1, n do
      local path = paths[i]
      if type(path) ~= 'string' or path == '' then
         fail(fname, 'paths[' .. i .. '] must be a file path, got ' .. (path == '' and 'an empty string' or type(path)))
      end
      if seen[path] then fail(fname, "paths[" .. seen[path] .. '] and paths[' .. i .. "] are both '" .. path .. "'") end
      seen[path] = i
   end
   if #paths ~= n then fail(fname, 'expected one output path per image (' .. n .. '), got ' .. #paths) end
   if seeds ~= nil and (type(seeds) ~= 'table' or T.isTensor(seeds)) then
      -- a tensor would be read as an empty table (and its float32 rounds seeds above 2^24)
      fail(fname, 'seeds must be a Lua list of whole numbers, got ' .. L.valueStr(seeds))
   end
   local c, o, scale = saccadeOptions(fname, opts)
   local cpaths = ffi.new('const char *[?]', math.max(n, 1))
   local cseeds = ffi.new('uint64_t[?]', math.max(n, 1))
   for i = 1, n do
      local seed = seeds and seeds[i] or (o.seed + i)
      if not isWhole(seed, 0, 2 ^ 53) then
         fail(fname, 'seeds[' .. i .. '] must be a whole number from 0 to 2^53, got ' .. L.valueStr(seed))
      end
      cpaths[i - 1] = paths[i]
      cseeds[i - 1] = seed
   end
   local img = T._contig((images:cpu() / scale):clamp(0, 1))
   local rc = C.sl_saccade_files(img:data(), n, images:size(2), images:size(3), c, cseeds, cpaths)
   T._anchor(img)
   if rc ~= 0 then cfail() end
   return paths
end

---------------------------------------------------------------------------
-- pictures
---------------------------------------------------------------------------

-- pictures larger than this many pixels are refused (an RGB PNG of 2^28
-- pixels is 768 MB in memory); a GIF has at most 65535 pixels a side and
-- its frames at most 2^30 bytes
local MAX_PIXELS, MAX_GIF_BYTES = 2 ^ 28, 2 ^ 30

local function writePng(fname, path, w, h, rgb)
   if C.sl_png_write(path, w, h, rgb) ~= 0 then cfailAs(fname) end
end

-- rows x bins occupancy of one spike source: rows, bins and the (row, bin)
-- of every spike.  Events with a negative coordinate or a time outside
-- [0, bins) are not drawn, as toSpikeTensor drops them.
local function rasterOf(src, samplingTime, fname)
   if getmetatable(src) == Event then
      checkEvent(fname, src)
      if src.n < 1 then fail(fname, 'the event count n = ' .. L.valueStr(src.n) .. ' is not valid') end
      local tmin, tmax = range(src.t, src.n)
      if not (tmin > -math.huge and tmax < math.huge) then fail(fname, 'event times must be finite') end
      local _, pmax = range(src.p, src.n)
      local _, xmax = range(src.x, src.n)
      local ymax = 0
      if src.y then _, ymax = range(src.y, src.n) end
      local X, Y = math.max(xmax, 0) + 1, math.max(ymax, 0) + 1
      local rows, bins = (math.max(pmax, 0) + 1) * X * Y, math.floor(math.max(tmax, 0) / samplingTime) + 1
      local hr, hb = {}, {}
      for i = 0, src.n - 1 do
         local x, y, p = src.x[i], src.y and src.y[i] or 0, src.p[i]
         local b = math.floor(src.t[i] / samplingTime + 0.5)
         if x >= 0 and y >= 0 and p >= 0 and b >= 0 and b < bins then
            hr[#hr + 1], hb[#hb + 1] = (p * Y + y) * X + x, b
         end
      end
      return rows, bins, hr, hb
   elseif T.isTensor(src) then
      if src:dim() < 2 or src:numel() == 0 then
         fail(fname, 'expected a non-empty tensor with a time dimension, got ' .. T.shapeStr(src))
      end
      local s = T._contig(src:detach():cpu())
      local bins = s:size(-1)
      local rows = s:numel() / bins
      local d, hr, hb = s:data(), {}, {}
      for i = 0, s:numel() - 1 do
         if d[i] ~= 0 then hr[#hr + 1], hb[#hb + 1] = math.floor(i / bins), i % bins end
      end
      T._anchor(s)
      return rows, bins, hr, hb
   end
   fail(fname, 'expected a spike tensor or an snn.io event, got ' .. type(src))
end

local PANEL_COLOURS = {{0, 0, 0}, {200, 30, 30}, {30, 60, 200}, {20, 140, 40}}

--- Spike raster (neuron vs time) as a PNG.  src: a spike tensor (all but
-- the last dimension flattened into neurons, time last), an event stream,
-- or a list of those drawn side by side (e.g. {output, target}).
-- opts: samplingTime (events, ms; default 1), maxWidth (default 1600),
-- maxHeight (default 1000) -- larger rasters merge bins or neurons;
-- minHeight (default 200) -- rasters of few neurons draw each on several
-- pixel rows.  Events with a negative x, y or p, or outside the time range,
-- are not drawn (as toSpikeTensor drops them).
function M.raster(src, path, opts)
   local fname = 'raster'
   if opts ~= nil and type(opts) ~= 'table' then fail(fname, 'expected an options table, got ' .. type(opts)) end
   opts = opts or {}
   checkPath(fname, path)
   local samplingTime = opts.samplingTime or 1
   if not isFinite(samplingTime) or not (samplingTime > 0) then
      fail(fname, 'samplingTime must be a positive number of ms, got ' .. L.valueStr(samplingTime))
   end
   local maxW, maxH, minH = opts.maxWidth or 1600, opts.maxHeight or 1000, opts.minHeight or 200
   for name, v in pairs({maxWidth = maxW, maxHeight = maxH, minHeight = minH}) do
      if not isWhole(v, 1, 2 ^ 31 - 1) then fail(fname, name .. ' must be a positive whole number of pixels, got ' .. L.valueStr(v)) end
   end
   if src == nil then fail(fname, 'expected a spike tensor, an snn.io event or a list of them, got nil') end
   local list = (type(src) == 'table' and not T.isTensor(src) and getmetatable(src) ~= Event) and src or {src}
   if #list == 0 then fail(fname, 'nothing to draw') end
   local panels = {}
   for i, s in ipairs(list) do
      local rows, bins, hr, hb = rasterOf(s, samplingTime, fname)
      local bx = math.max(1, math.ceil(bins / math.max(1, math.floor(maxW / #list))))
      local ry = math.max(1, math.ceil(rows / maxH))
      -- few neurons: several pixel rows each, so small rasters stay readable
      local sy = ry == 1 and math.max(1, math.min(8, math.floor(minH / rows))) or 1
      panels[i] = {rows = rows, bins = bins, hr = hr, hb = hb, w = math.ceil(bins / bx), h = math.ceil(rows / ry) * sy,
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
   if W * Hh > MAX_PIXELS then
      fail(fname, string.format('a %dx%d-pixel image is too large (at most 2^28 pixels); lower maxWidth or maxHeight', W, Hh))
   end
   local rgb = ffi.new('unsigned char[?]', W * Hh * 3)
   ffi.fill(rgb, W * Hh * 3, 255)
   local function paint(xx, yy, col)
      if yy >= 0 and yy < Hh and xx >= 0 and xx < W then
         local o = (yy * W + xx) * 3
         rgb[o], rgb[o + 1], rgb[o + 2] = col[1], col[2], col[3]
      end
   end
   local frame = {190, 190, 190}
   local x0 = margin
   for i, p in ipairs(panels) do
      local col = PANEL_COLOURS[(i - 1) % #PANEL_COLOURS + 1]
      -- light frame around the panel
      for yy = margin - 1, margin + p.h do
         paint(x0 - 1, yy, frame)
         paint(x0 + p.w, yy, frame)
      end
      for k = 1, #p.hr do
         local xx = x0 + math.floor(p.hb[k] / p.bx)
         local top = margin + math.floor(p.hr[k] / p.ry) * p.sy
         for dy = 0, math.max(p.sy - 2, 0) do paint(xx, top + dy, col) end -- a gap between neurons when scaled
      end
      x0 = x0 + p.w + gap
   end
   writePng(fname, path, W, Hh, rgb)
   return path
end

--- Animated GIF of an event stream (the reference's showTD/animTD, to a
-- file).  2-D events: frames of 1000/frameRate ms, ON events (p = 1) red,
-- OFF (p = 0) blue, other polarities green, on black.  1-D events: a
-- raster (time across, neuron down) that grows frame by frame.
-- opts: frameRate (24), scale (pixels per sensor pixel; default 4).
-- Events at a negative x or y (1-D: a negative time) are not drawn.  The
-- GIF may have at most 65535 pixels a side and 2^30 bytes of frames.
function M.animTD(ev, path, opts)
   local fname = 'animTD'
   if opts ~= nil and type(opts) ~= 'table' then fail(fname, 'expected an options table, got ' .. type(opts)) end
   opts = opts or {}
   checkEvent(fname, ev)
   checkPath(fname, path)
   if ev.n < 1 then fail(fname, 'the event stream is empty') end
   local frameRate = opts.frameRate or 24
   if not isFinite(frameRate) or not (frameRate > 0) then
      fail(fname, 'frameRate must be a positive number, got ' .. L.valueStr(frameRate))
   end
   local interval = 1000 / frameRate
   local tmin, tmax = range(ev.t, ev.n)
   if not (tmin > -math.huge and tmax < math.huge) then fail(fname, 'event times must be finite') end
   local minFrame = math.floor(tmin / interval)
   local nFrames = math.max(1, math.ceil(tmax / interval) - minFrame)
   local palette = ffi.new('unsigned char[15]', {0, 0, 0, 60, 90, 255, 255, 60, 60, 60, 220, 60, 255, 255, 255})
   local _, xmax = range(ev.x, ev.n)
   xmax = math.max(xmax, 0)
   local W0, H0
   if ev.dim == 2 then
      local _, ymax = range(ev.y, ev.n)
      W0, H0 = xmax + 1, math.max(ymax, 0) + 1
   else
      W0, H0 = math.min(400, math.ceil(math.max(tmax, 0)) + 1), xmax + 1
   end
   local scale = opts.scale or math.max(1, math.floor(256 / math.max(W0, H0)))
   if not isWhole(scale, 1, 65535) then fail(fname, 'scale must be a positive whole number, got ' .. L.valueStr(scale)) end
   local W, Hh = W0 * scale, H0 * scale
   if W > 65535 or Hh > 65535 then
      fail(fname, string.format('a %dx%d-pixel GIF is too large (at most 65535 pixels a side; %s)', W, Hh,
         ev.dim == 2 and 'events reach x = ' .. xmax .. ', y = ' .. (H0 - 1) or 'events reach x = ' .. xmax))
   end
   if W * Hh * nFrames > MAX_GIF_BYTES then
      fail(fname, string.format('%d frames of %dx%d pixels exceed the limit of 2^30 bytes (events span %g to %g ms); '
         .. 'lower frameRate or scale', nFrames, W, Hh, tmin, tmax))
   end
   local frames = ffi.new('unsigned char[?]', W * Hh * nFrames)
   local function plot(f, px, py, colour)
      for dy = 0, scale - 1 do
         local base = f * W * Hh + (py * scale + dy) * W + px * scale
         for dx = 0, scale - 1 do frames[base + dx] = colour end
      end
   end
   local firstIn = {} -- 1-D: the events that first appear in frame g
   for i = 0, ev.n - 1 do
      local colour = ev.p[i] == 1 and 2 or (ev.p[i] == 0 and 1 or 3)
      local f = math.floor(ev.t[i] / interval) - minFrame
      if ev.dim == 2 then
         if f >= 0 and f < nFrames and ev.x[i] >= 0 and ev.y[i] >= 0 then plot(f, ev.x[i], ev.y[i], colour) end
      elseif ev.x[i] >= 0 and ev.t[i] >= 0 and f < nFrames then
         local g = math.max(f, 0)
         firstIn[g] = firstIn[g] or {}
         table.insert(firstIn[g], i)
      end
   end
   if ev.dim == 1 then
      -- the raster grows: each frame is the previous one plus its new events
      local size = W * Hh
      for g = 0, nFrames - 1 do
         if g > 0 then ffi.copy(frames + g * size, frames + (g - 1) * size, size) end
         for _, i in ipairs(firstIn[g] or {}) do
            local px = math.floor(ev.t[i] / math.max(tmax, 1) * (W0 - 1))
            plot(g, px, ev.x[i], ev.p[i] == 1 and 2 or (ev.p[i] == 0 and 1 or 3))
         end
      end
   end
   local delay = math.min(65535, math.max(1, math.floor(100 / frameRate + 0.5)))
   if C.sl_gif_write(path, W, Hh, nFrames, frames, palette, 5, delay) ~= 0 then cfail() end
   return path
end

--- showTD(ev[, fig][, frameRate]): the reference shows the animation in a
-- matplotlib window; with no display here it writes it with animTD to a
-- temporary GIF (or to opts.path when the second argument is an options
-- table {path =, frameRate =, scale =}), says where, and returns the path.
-- fig, as the reference's figure handle, is ignored.
function M.showTD(ev, fig, frameRate)
   local opts = {}
   if type(fig) == 'table' then
      for k, v in pairs(fig) do opts[k] = v end
   elseif frameRate ~= nil then
      opts.frameRate = frameRate
   end
   local path = opts.path
   opts.path = nil
   if path == nil then
      local base = os.tmpname() -- (made as an empty file: only its unique name is used)
      os.remove(base)
      path = base .. '.gif'
   end
   local ok, err = pcall(M.animTD, ev, path, opts)
   if not ok then fail('showTD', (tostring(err):gsub('^animTD: ', ''))) end
   print('showTD: animation written to ' .. path .. ' (no display here: open it in an image viewer)')
   return path
end

--- Write an image as an RGB PNG: a {H, W} or {1, H, W} grey image or a
-- {3, H, W} RGB one, values 0..1 (clamped; NaN is black).
function M.imageToPng(img, path)
   local fname = 'imageToPng'
   if not T.isTensor(img) or not (img:dim() == 2 or (img:dim() == 3 and (img:size(1) == 1 or img:size(1) == 3))) then
      fail(fname, 'expected a {H, W} or {1, H, W} grey or {3, H, W} RGB image tensor, got '
         .. (T.isTensor(img) and T.shapeStr(img) or type(img)))
   end
   checkPath(fname, path)
   local H, W = img:size(-2), img:size(-1)
   if H * W == 0 then fail(fname, 'the image is empty: ' .. T.shapeStr(img)) end
   if H * W > MAX_PIXELS then fail(fname, string.format('a %dx%d-pixel image is too large (at most 2^28 pixels)', W, H)) end
   local s = T._contig(img:detach():cpu():clamp(0, 1))
   local rgbIn = img:dim() == 3 and img:size(1) == 3
   local d = s:data()
   local rgb = ffi.new('unsigned char[?]', W * H * 3)
   for y = 0, H - 1 do
      for x = 0, W - 1 do
         for c = 0, 2 do
            local v = d[((rgbIn and c or 0) * H + y) * W + x]
            rgb[(y * W + x) * 3 + c] = v == v and math.floor(v * 255 + 0.5) or 0
         end
      end
   end
   T._anchor(s)
   writePng(fname, path, W, H, rgb)
   return path
end

return M
