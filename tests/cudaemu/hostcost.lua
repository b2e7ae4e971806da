--[[
The host side of a GPU training step, measured on the emulator: the time Lua,
the dispatch and the queueing take when the device work itself is dropped
(sl_cudaemu_discard), and the kernel launches made.  A real GPU adds the
driver's launch cost (a few microseconds each) on top; when the total stays
well below the step's device time, the host keeps the GPU fed and launch
overhead does not decide the speed.

    SLAYER_CUDA_LIB=<build>/libslayer_cuda_emu.so \
       luajit tests/cudaemu/hostcost.lua [bench/workloads.lua options]

e.g. `--only W1 --batch 12 --steps 50`; --device cuda is added.  Results
are garbage (nothing runs), the times are the host's.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/tests/cudaemu/[^/]*$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path

local ffi = require 'ffi'
local snn = require 'slayer'
local L = require 'slayer.ffi'

assert(snn.cuda.isAvailable(), 'hostcost.lua: the CUDA back end is not available')
assert(snn.cuda.deviceName():find('cudaemu', 1, true),
   'hostcost.lua: needs the emulator (SLAYER_CUDA_LIB=<build>/libslayer_cuda_emu.so), got ' .. snn.cuda.deviceName())
local function sym(name, ctype) return ffi.cast(ctype, L.C.sl_cuda_symbol(name)) end
local discard = sym('sl_cudaemu_discard', 'void (*)(int)')
local counters = sym('sl_cudaemu_counters', 'void (*)(int64_t *, int64_t *, int64_t *)')
local function launches()
   local c = ffi.new('int64_t[3]')
   counters(c, c + 1, c + 2)
   return tonumber(c[0]), tonumber(c[1])
end

local args = {...}
args[#args + 1] = '--device'
args[#args + 1] = 'cuda'

discard(1)
local l0, w0 = launches()
local chunk = assert(loadfile(root .. '/bench/workloads.lua'))
chunk(unpack(args))
local l1, w1 = launches()
discard(0)
print(string.format('device work dropped: %d launches and %d host waits in all (set-up, warm-up and forward-only runs included)',
   l1 - l0, w1 - w0))
