--[[
slayer -- spiking neural networks in the tradition of SLAYER, on LuaJIT.

    local snn = require 'slayer'
    local T = snn.tensor

The package table mirrors the reference (snn.layer, snn.loihi, snn.params,
snn.loss, snn.predict, snn.io, snn.quantize, snn.auto) and adds snn.tensor, snn.optim,
snn.stats, snn.data, snn.Module.  Sub-modules are loaded on first use, so
`require 'slayer'` only loads the C library and the tensor core.
]]
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'
local ffi = require 'ffi'

local C = L.C
local snn = {tensor = T, _VERSION = ffi.string(C.sl_version())}

-- field name -> module, loaded when first read
local lazy = {
   nn = 'slayer.nn',
   optim = 'slayer.optim',
   layer = 'slayer.layer',
   loihi = 'slayer.loihi',
   params = 'slayer.params',
   loss = 'slayer.loss',
   predict = 'slayer.predict',
   quantize = 'slayer.quantize',
   io = 'slayer.io',
   data = 'slayer.data',
   stats = 'slayer.stats',
   plot = 'slayer.plot',
   cuda = 'slayer.cuda',
   utils = 'slayer.utils',
   auto = 'slayer.auto',
}
-- names re-exported from slayer.nn
local fromNN = {Module = true, Sequential = true, class = true, save = true, load = true, weightNorm = true,
   removeWeightNorm = true, updateWeightNorm = true}

setmetatable(snn, {__index = function(t, k)
   local mod = lazy[k]
   if mod then
      local v = require(mod)
      rawset(t, k, v)
      return v
   end
   if fromNN[k] then
      local v = require('slayer.nn')[k]
      rawset(t, k, v)
      return v
   end
   return nil
end})

-- device argument of the memory and seed functions: nil means default
local DEVICES = {cpu = 0, cuda = 1}
local function deviceArg(fname, device, default)
   if device == nil then return default end
   local d = DEVICES[device]
   if d == nil then
      L.raise(fname .. ": expected device 'cpu' or 'cuda', got " .. L.valueStr(device))
   end
   return d
end

--- Seed the random generator of a device ('cpu' by default, or 'cuda');
-- with no device given both generators are seeded.  Seeds are integers in
-- [0, 2^53], the range where every integer is a Lua number.
function snn.manualSeed(seed, device)
   if type(seed) ~= 'number' or seed < 0 or seed % 1 ~= 0 or seed > 2 ^ 53 then
      L.raise('manualSeed: expected an integer seed in [0, 2^53], got ' .. L.valueStr(seed))
   end
   local d = deviceArg('manualSeed', device, nil)
   if d == nil or d == 0 then C.sl_manual_seed(0, seed) end
   if d == nil or d == 1 then C.sl_manual_seed(1, seed) end
end

--- Threads of the CPU kernels.  Requests above four per online CPU (at most
-- 1024) are clamped there: more threads would only contend, and very many
-- make OpenMP fail to start them.  getNumThreads() gives the count in use.
function snn.setNumThreads(n)
   if type(n) ~= 'number' or n < 1 or n % 1 ~= 0 then
      L.raise('setNumThreads: expected a positive integer, got ' .. L.valueStr(n))
   end
   C.sl_set_num_threads(math.min(n, 2 ^ 31 - 1))
end

function snn.getNumThreads() return C.sl_get_num_threads() end

snn.noGrad = A.noGrad

--- Allocator statistics of a device ('cpu' by default, or 'cuda'), in bytes.
function snn.memoryStats(device)
   local d = deviceArg('memoryStats', device, 0)
   local s = ffi.new('sl_mem_stats')
   C.sl_mem_get_stats(d, s)
   local collections, collectSeconds = T._collections()
   return {
      collections = collections, collectSeconds = collectSeconds, -- forced Lua collections (both devices)
      liveBytes = tonumber(s.live_bytes), cachedBytes = tonumber(s.cached_bytes),
      peakLiveBytes = tonumber(s.peak_live_bytes), allocCalls = tonumber(s.alloc_calls),
      systemAllocs = tonumber(s.system_allocs), cacheLimit = tonumber(s.cache_limit),
   }
end

--- The collections that only let memory be reused sooner wait until
-- `factor` times the Lua heap was allocated since the last collection
-- (default 16; 0 leaves only the fixed 16 MB on the CPU, 4 MB on the GPU):
-- more saves collector time when the heap is large, less keeps less garbage.
-- Returns the previous factor.
function snn.setReuseFactor(factor)
   if type(factor) ~= 'number' or not (factor >= 0 and factor <= 2 ^ 20) then
      L.raise('setReuseFactor: expected a number in [0, 2^20], got ' .. L.valueStr(factor))
   end
   return T._setReuseFactor(factor)
end

--- Bound the bytes the caching allocator keeps for reuse (a non-negative
-- integer; 0 keeps nothing).
function snn.setCacheLimit(bytes, device)
   if type(bytes) ~= 'number' or bytes < 0 or bytes % 1 ~= 0 or bytes > 2 ^ 62 then
      L.raise('setCacheLimit: expected a non-negative integer number of bytes (at most 2^62), got '
         .. L.valueStr(bytes))
   end
   C.sl_mem_set_cache_limit(deviceArg('setCacheLimit', device, 0), bytes)
end

function snn.emptyCache(device)
   local d = deviceArg('emptyCache', device, 0)
   collectgarbage('collect')
   C.sl_mem_empty_cache(d)
end

return snn
