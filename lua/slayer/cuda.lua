--[[
slayer.cuda -- the GPU back end, seen from Lua.

    local snn = require 'slayer'
    if snn.cuda.isAvailable() then
       net:cuda()                          -- parameters and buffers move in place
       local x = T.zeros({12, 2, 34, 34, 300}, 'cuda')
       ...
       snn.cuda.synchronize()              -- wait for queued GPU work (timing)
    else
       print(snn.cuda.unavailableReason())
    end

The back end is libslayer_cuda.so, opened by libslayer the first time a
tensor goes to the GPU (or isAvailable() asks); on a machine without a GPU,
driver or CUDA libraries it simply reports itself unavailable.  Every op runs
on one CUDA stream in issue order, without waiting on the host; copies to the
host (t:cpu(), t:item(), sums) wait for the work before them.  Errors found
inside kernels (an index out of range) are reported at the next such wait.

Device memory comes from a caching allocator: freed blocks are kept for
reuse, so a training loop stops calling cudaMalloc after its first step.
memoryStats() gives its counters; emptyCache() returns the cached blocks to
the driver.  Data loaders with device = 'cuda' stage batches in pinned host
memory (pinnedBuffer) and copy them without waiting for the queued work.  $SLAYER_CUDA_DEVICE picks the GPU (default 0);
$SLAYER_CUDA_LIB names the library file explicitly.
]]
local ffi = require 'ffi'
local L = require 'slayer.ffi'

local C = L.C
local M = {}

-- functions of libslayer_cuda.so beyond the op twins, resolved on demand
local SIGNATURES = {
   sl_cuda_synchronize = 'int (*)(void)',
   sl_cuda_profiler = 'int (*)(int)',
   sl_cuda_device_name = 'const char *(*)(void)',
   sl_cuda_device_index = 'int (*)(void)',
   sl_cuda_device_count = 'int (*)(void)',
   sl_cuda_mem_info = 'int (*)(int64_t *, int64_t *)',
   sl_cuda_peak_reserved = 'int64_t (*)(void)',
   sl_cuda_reset_peak = 'void (*)(void)',
   sl_cuda_set_memory_limit = 'void (*)(int64_t)',
   sl_cuda_memory_limit = 'int64_t (*)(void)',
   sl_cuda_alloc_failures = 'int64_t (*)(void)',
   sl_cuda_host_alloc = 'void *(*)(size_t)',
   sl_cuda_host_free = 'void (*)(void *)',
   sl_cuda_event_record = 'void *(*)(void)',
   sl_cuda_event_wait = 'int (*)(void *)',
   sl_cuda_event_free = 'void (*)(void *)',
}
local resolved = {}

local function fn(name, caller)
   local f = resolved[name]
   if f then return f end
   local p = C.sl_cuda_symbol(name)
   if p == nil then L.raise('cuda.' .. caller .. ': ' .. L.lastError()) end
   f = ffi.cast(SIGNATURES[name], p)
   resolved[name] = f
   return f
end

--- True when the CUDA library loaded and found a usable GPU and driver.
-- Never raises; unavailableReason() says why not.
function M.isAvailable()
   return C.sl_cuda_available() ~= 0
end

--- Why the GPU cannot be used (nil when it can).
function M.unavailableReason()
   if C.sl_cuda_available() ~= 0 then return nil end
   return L.lastError()
end

--- Wait until all queued GPU work has finished; raises the first error a
-- kernel reported since the last wait.
function M.synchronize()
   if fn('sl_cuda_synchronize', 'synchronize')() ~= 0 then L.raise('cuda.synchronize: ' .. L.lastError()) end
end

--- Open and close the region an attached profiler records: run Nsight
-- Compute or Systems with --profile-from-start off, and only the GPU work
-- queued between the two calls is profiled (bench/workloads.lua --profile
-- marks one training step).  Without a profiler they do nothing.
function M.profilerStart()
   if fn('sl_cuda_profiler', 'profilerStart')(1) ~= 0 then L.raise('cuda.profilerStart: ' .. L.lastError()) end
end

function M.profilerStop()
   if fn('sl_cuda_profiler', 'profilerStop')(0) ~= 0 then L.raise('cuda.profilerStop: ' .. L.lastError()) end
end

function M.deviceName()
   return ffi.string(fn('sl_cuda_device_name', 'deviceName')())
end

--- 1-based index of the GPU in use (set $SLAYER_CUDA_DEVICE before the first
-- GPU tensor to choose another).
function M.currentDevice()
   return fn('sl_cuda_device_index', 'currentDevice')() + 1
end

function M.deviceCount()
   if not M.isAvailable() then return 0 end
   return fn('sl_cuda_device_count', 'deviceCount')()
end

--- The caching allocator's counters, in bytes: liveBytes (held by tensors),
-- cachedBytes (kept for reuse), reservedBytes (both), peakLiveBytes,
-- peakReservedBytes, allocCalls, systemAllocs (cudaMalloc calls),
-- cacheLimit, memoryLimit (setMemoryLimit's, or nil), allocFailures
-- (allocations refused as out of memory, each retry counted), and the
-- driver's deviceFreeBytes and deviceTotalBytes.
function M.memoryStats()
   local s = ffi.new('sl_mem_stats')
   fn('sl_cuda_synchronize', 'memoryStats') -- raises when unavailable
   C.sl_mem_get_stats(1, s)
   local free, total = ffi.new('int64_t[1]'), ffi.new('int64_t[1]')
   if fn('sl_cuda_mem_info', 'memoryStats')(free, total) ~= 0 then L.raise('cuda.memoryStats: ' .. L.lastError()) end
   return {
      liveBytes = tonumber(s.live_bytes), cachedBytes = tonumber(s.cached_bytes),
      reservedBytes = tonumber(s.live_bytes + s.cached_bytes),
      peakLiveBytes = tonumber(s.peak_live_bytes),
      peakReservedBytes = tonumber(fn('sl_cuda_peak_reserved', 'memoryStats')()),
      allocCalls = tonumber(s.alloc_calls), systemAllocs = tonumber(s.system_allocs),
      cacheLimit = tonumber(s.cache_limit), memoryLimit = M.memoryLimit(),
      allocFailures = tonumber(fn('sl_cuda_alloc_failures', 'memoryStats')()),
      deviceFreeBytes = tonumber(free[0]), deviceTotalBytes = tonumber(total[0]),
   }
end

--- Restart the peak counters from the current live and reserved bytes.
function M.resetPeakMemoryStats()
   fn('sl_cuda_reset_peak', 'resetPeakMemoryStats')()
end

--- Give the cached device blocks back to the driver (after a collection, so
-- tensors only the collector still holds are freed first).
function M.emptyCache()
   fn('sl_cuda_synchronize', 'emptyCache')
   collectgarbage('collect')
   C.sl_mem_empty_cache(1)
end

--- Bound the bytes the allocator keeps cached for reuse.
function M.setCacheLimit(bytes)
   if type(bytes) ~= 'number' or bytes < 0 or bytes % 1 ~= 0 or bytes > 2 ^ 62 then
      L.raise('cuda.setCacheLimit: expected a non-negative integer number of bytes (at most 2^62), got '
         .. tostring(bytes))
   end
   fn('sl_cuda_synchronize', 'setCacheLimit')
   C.sl_mem_set_cache_limit(1, bytes)
end

--- Hold at most `bytes` of device memory (tensors and the cache together),
-- as if the GPU were that small, e.g. to share it with other processes;
-- nil removes the limit.  Cached blocks past it go back to the driver now.
-- Garbage is collected before live memory nears the limit (as before it
-- nears the device's memory), and an allocation that does not fit even
-- then fails with an out-of-memory error naming the limit.
function M.setMemoryLimit(bytes)
   if bytes ~= nil and (type(bytes) ~= 'number' or bytes < 0 or bytes % 1 ~= 0 or bytes > 2 ^ 62) then
      L.raise('cuda.setMemoryLimit: expected a non-negative integer number of bytes (at most 2^62) or nil, got '
         .. L.valueStr(bytes))
   end
   fn('sl_cuda_synchronize', 'setMemoryLimit') -- raises when unavailable
   fn('sl_cuda_set_memory_limit', 'setMemoryLimit')(bytes or -1)
end

--- The limit setMemoryLimit set, in bytes, or nil.
function M.memoryLimit()
   local b = fn('sl_cuda_memory_limit', 'memoryLimit')()
   return b >= 0 and tonumber(b) or nil
end

--- n floats of page-locked (pinned) host memory, freed when the pointer
-- is collected: copies from it to the GPU run without waiting for the
-- queued work (the data loaders stage batches in it).
function M.pinnedBuffer(n)
   local p = fn('sl_cuda_host_alloc', 'pinnedBuffer')(n * 4)
   if p == nil then L.raise('cuda.pinnedBuffer: ' .. L.lastError()) end
   return ffi.gc(ffi.cast('float *', p), fn('sl_cuda_host_free', 'pinnedBuffer'))
end

--- An event after the GPU work queued so far; M.waitEvent(ev) blocks the
-- host until that work has finished.
function M.recordEvent()
   local ev = fn('sl_cuda_event_record', 'recordEvent')()
   if ev == nil then L.raise('cuda.recordEvent: ' .. L.lastError()) end
   return ffi.gc(ev, fn('sl_cuda_event_free', 'recordEvent'))
end

function M.waitEvent(ev)
   if fn('sl_cuda_event_wait', 'waitEvent')(ev) ~= 0 then L.raise('cuda.waitEvent: ' .. L.lastError()) end
end

return M
