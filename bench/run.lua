--[[
Micro-benchmarks of the tensor core.

    luajit bench/run.lua [--threads N] [--reps R]

Prints, as medians over R repetitions:
  - sgemm 1024^3 GFLOP/s through the Lua API (a:matmul(b)) and through
    OpenBLAS called directly from C, and their ratio;
  - element-wise throughput on 64 MB tensors (out = a + b: 3 x 64 MB moved);
  - Lua-side overhead per small op (a + b on 4-element tensors, including the
    allocation and collection of the result).
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/bench/[^/]*$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path

local snn = require 'slayer'
local T = snn.tensor
local C = require('slayer.ffi').C

local opts = snn.utils.options({...}, {
   threads = {2, 'CPU threads', integer = true, min = 1},
   reps = {11, 'timed repetitions (median reported)', integer = true, min = 1},
}, 'luajit bench/run.lua [options]')
snn.setNumThreads(opts.threads)

local function time(fn, reps) return (snn.utils.timeit(fn, reps)) end

local rows = {}
local function row(name, value, unit, note)
   rows[#rows + 1] = {name, value, unit, note or ''}
end

-- sgemm
local n = 1024
local A, B = T.randn({n, n}), T.randn({n, n})
local Cm = T.empty({n, n})
local flops = 2 * n * n * n
local tLua = time(function() local c = A:matmul(B) end, opts.reps)
local tRaw = time(function() C.sl_raw_sgemm(n, n, n, A:data(), B:data(), Cm:data()) end, opts.reps)
row('sgemm 1024^3 via Lua API', flops / tLua / 1e9, 'GFLOP/s')
row('sgemm 1024^3 OpenBLAS from C', flops / tRaw / 1e9, 'GFLOP/s')
row('  ratio Lua API / direct', 100 * tRaw / tLua, '%', 'aim >= 90%')

-- element-wise bandwidth
local m = 16 * 1024 * 1024 -- 64 MB of float32
local x, y = T.rand({m}), T.rand({m})
local tAdd = time(function() local z = x + y end, opts.reps)
row('element-wise a + b, 64 MB tensors', 3 * m * 4 / tAdd / 1e9, 'GB/s', 'bytes read + written')
local out = T.empty({m})
local tAxpy = time(function() out:add_(x, 0.5) end, opts.reps)
row('in-place axpy, 64 MB tensors', 3 * m * 4 / tAxpy / 1e9, 'GB/s')
local tCopy = time(function() out:copy(x) end, opts.reps)
row('copy, 64 MB tensors', 2 * m * 4 / tCopy / 1e9, 'GB/s')

-- per-op overhead on tiny tensors
local s1, s2 = T.ones({4}), T.ones({4})
local iters = 200000
local tSmall = time(function()
   local r
   for _ = 1, iters do r = s1 + s2 end
   return r
end, 5)
row('small op (a + b, 4 elements)', 1e6 * tSmall / iters, 'us/op', 'aim < 2 us; includes alloc and GC')
local w = T.ones({4}):requiresGrad(true)
local tRec = time(function()
   local r
   for _ = 1, iters / 4 do r = w * 2 end
   return r
end, 5)
row('small op with autograd record', 1e6 * tRec / (iters / 4), 'us/op')

print(string.format('slayer-lua micro-benchmarks (%d threads, median of %d)', opts.threads, opts.reps))
print(string.rep('-', 78))
for _, r in ipairs(rows) do
   print(string.format('%-38s %10.2f %-8s %s', r[1], r[2], r[3], r[4]))
end
