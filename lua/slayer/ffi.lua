--[[
slayer.ffi -- loads libslayer once and declares its C API.

The declarations come from the library itself (sl_cdef returns the
declaration block of csrc/slayer.h, embedded at build time), so the Lua side
can never disagree with the binary it loaded.

Search order for the library:
  1. $SLAYER_LIB (a path to libslayer.so)
  2. build/libslayer.so of the source tree this file lives in
  3. libslayer.so on package.cpath (a LuaRocks install puts it there)
  4. the system loader's search path
]]
local ffi = require 'ffi'

local M = {}

local function fileExists(path)
   local f = io.open(path, 'rb')
   if f then f:close() return true end
   return false
end

local function here()
   local src = debug.getinfo(1, 'S').source
   if src:sub(1, 1) == '@' then
      return src:sub(2):match('^(.*)/[^/]*$') or '.'
   end
   return '.'
end

local function candidates()
   local list = {}
   local env = os.getenv('SLAYER_LIB')
   if env and env ~= '' then list[#list + 1] = env end
   local dir = here()
   list[#list + 1] = dir .. '/../../build/libslayer.so'
   local onPath = package.searchpath('libslayer', package.cpath)
   if onPath then list[#list + 1] = onPath end
   return list
end

-- OpenMP threads that wait for work spin (libgomp: 300,000 rounds) before
-- they sleep.  On a machine that is also running something else the
-- spinning thread takes the core the working one needs.  Beside two busy
-- processes on these 2 cores, W1 took 105 to 390 ms a step; with a spin of
-- 10,000 rounds, 0.43 to 0.65 times as long (whole-process time, paired
-- runs), while an idle machine hardly sees the difference (34.3 against
-- 33.3 ms a step).  libgomp reads its
-- settings when it is loaded (with libslayer, just below), so they are set
-- here unless the user chose a wait policy.
if os.getenv('OMP_WAIT_POLICY') == nil and os.getenv('GOMP_SPINCOUNT') == nil then
   pcall(ffi.cdef, 'int setenv(const char *name, const char *value, int overwrite);')
   pcall(function() ffi.C.setenv('GOMP_SPINCOUNT', '10000', 0) end)
end

local lib, tried = nil, {}
for _, path in ipairs(candidates()) do
   if fileExists(path) then
      local ok, res = pcall(ffi.load, path)
      if ok then lib = res break end
      tried[#tried + 1] = path .. ' (' .. tostring(res) .. ')'
   else
      tried[#tried + 1] = path .. ' (missing)'
   end
end
if not lib then
   local ok, res = pcall(ffi.load, 'slayer')
   if ok then lib = res else tried[#tried + 1] = 'system libslayer.so (' .. tostring(res) .. ')' end
end
if not lib then
   error('slayer: cannot load libslayer.so; build it with `cmake -S . -B build && cmake --build build`'
      .. ' or set SLAYER_LIB. Tried: ' .. table.concat(tried, '; '), 0)
end

ffi.cdef [[ const char *sl_cdef(void); ]]
ffi.cdef(ffi.string(lib.sl_cdef()))

M.C = lib


function M.lastError()
   return ffi.string(lib.sl_last_error())
end

-- the package's own folder: errors point past it, at the user's line
local pkgSource = debug.getinfo(1, 'S').source:match('^@(.*/)[^/]*$')

-- Reading C floats and doubles into Lua.  Debian's LuaJIT (2.1.0-beta3)
-- does not canonicalise the NaNs it converts from C numbers: a negative NaN
-- with certain payloads (uninitialised memory, a NaN read from a file, the
-- payload an arithmetic NaN carries along) arrives as a value of another
-- type -- nil, a table, a string -- that points anywhere, and using it can
-- crash the VM.  These read every NaN as the plain NaN 0/0 instead.
local u32p = ffi.typeof('const uint32_t *')
local NAN = 0 / 0
local HI = ffi.abi('le') and 1 or 0
function M.floatAt(p, i)
   if ffi.cast(u32p, p)[i] > 0xFF800000 then return NAN end -- the negative NaNs (positive ones are safe)
   return p[i]
end
function M.doubleAt(p, i)
   local w = ffi.cast(u32p, p + i)
   local hi = w[HI]
   if hi >= 0xFFF00000 and (hi > 0xFFF00000 or w[1 - HI] ~= 0) then return NAN end
   return p[i]
end

--- Argument checks the modules share: a finite number; a whole number in [lo, hi].
--- The element count of an FFI array (ffi.new('float[?]', n)), or nil for
-- a pointer, whose length is unknown (its caller vouches for it).
function M.ffiLength(v)
   if not tostring(ffi.typeof(v)):find('%]>$') then return nil end
   local elem = tonumber(ffi.cast('const char *', v + 1) - ffi.cast('const char *', v))
   return ffi.sizeof(v) / elem
end

function M.isFinite(v) return type(v) == 'number' and v == v and v ~= math.huge and v ~= -math.huge end
function M.isWhole(v, lo, hi) return M.isFinite(v) and v % 1 == 0 and v >= lo and v <= hi end

--- A received value as an error message shows it: numbers, booleans, nil
-- and strings as written, a tensor by its shape (never printed whole),
-- anything else by its type.
function M.valueStr(v)
   local tv = type(v)
   if tv == 'number' or tv == 'boolean' or tv == 'nil' or tv == 'string' then return tostring(v) end
   local c = tv == 'table' and rawget(v, '_c')
   if type(c) == 'cdata' then -- a tensor
      local parts = {}
      for i = 0, c.ndim - 1 do parts[#parts + 1] = tostring(c.shape[i]) end
      return 'tensor [' .. table.concat(parts, ', ') .. ']'
   end
   return tv
end

--- Raise 'fname: expected <what> (default a file path), got ...' unless
-- path is a non-empty string.
function M.checkPath(fname, path, what)
   if type(path) ~= 'string' or path == '' then
      M.raise(fname .. ': expected ' .. (what or 'a file path') .. ', got '
         .. (path == '' and 'an empty string' or type(path)))
   end
end

--- Raise msg at the first caller outside the package (the line of the
-- user's call), or without a position when that caller is C (pcall).
function M.raise(msg)
   local level = 2
   while pkgSource do
      local src = (debug.getinfo(level, 'S') or {}).source
      if not src or src:sub(2, #pkgSource + 1) ~= pkgSource or src:sub(1, 1) ~= '@' then break end
      level = level + 1
   end
   error(msg, level)
end

return M
