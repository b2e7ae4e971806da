--[[
Loading speed of N-MNIST-small (1,000 training samples, 2x34x34, tSample 300,
Ts 1, batch 12) with the single-threaded loader and with C worker threads.

    luajit bench/loader.lua [--data ../shared/data/nmnist-small] [--epochs 3] [--threads 2]

Prints the median samples per second over the epochs for workers = 0, 1, 2.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/bench/[^/]*$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path
local snn = require 'slayer'
local utils = snn.utils

local opt = utils.options({...}, {
   data = {root .. '/../shared/data/nmnist-small', 'N-MNIST-style folder with train1K.txt'},
   epochs = {3, 'epochs per setting (median reported)', integer = true, min = 1},
   threads = {2, 'OpenMP threads', integer = true, min = 1},
}, 'luajit bench/loader.lua [options]')
snn.setNumThreads(opt.threads)
local ds = snn.data.SpikeFiles{root = opt.data, list = 'train1K.txt', shape = {2, 34, 34}, tSample = 300, Ts = 1}

print(string.format('loading %d N-MNIST samples, batch 12, median of %d epochs', #ds, opt.epochs))
print(string.format('%-10s %14s %12s', 'workers', 'samples/s', 'ms/batch'))
for _, w in ipairs({0, 1, 2}) do
   local loader = snn.data.Loader(ds, {batchSize = 12, shuffle = true, seed = 1, workers = w})
   local rates = {}
   for e = 1, opt.epochs do
      local t0, n = utils.now(), 0
      for input in loader:iter() do n = n + input:size(1) end
      rates[e] = n / (utils.now() - t0)
   end
   table.sort(rates)
   local r = rates[math.floor((#rates + 1) / 2)]
   print(string.format('%-10d %14.0f %12.2f', w, r, 12000 / r))
end
