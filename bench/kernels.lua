--[[
Where a profiled GPU step's time goes, kernel by kernel: the sum, per kernel
name, of the durations Nsight Compute measured.

    ncu --profile-from-start off --clock-control none --print-kernel-base function --print-units base \
        --metrics gpu__time_duration.sum --csv --log-file w2.csv \
        luajit bench/workloads.lua --device cuda --only W2 --profile
    luajit bench/kernels.lua w2.csv [--top N]

(bench/device.sh runs both.)  Reads ncu's CSV (the header row with "Kernel
Name", "Metric Name", "Metric Unit" and "Metric Value", and a row per kernel
launch; lines before the header, such as ncu's own messages, are skipped) and
prints the kernels by total time: launches, total milliseconds, mean
microseconds per launch and share of the sum.  Each kernel runs alone under
ncu, so the sum is the step's device time without overlap or launch gaps.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/bench/[^/]*$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. package.path

local utils = require 'slayer.utils'

local opts = utils.options({...}, {
   {'csv', 'the CSV file ncu wrote (--csv --log-file)'},
   top = {20, 'kernels listed (the rest are summed in one line)', integer = true, min = 1},
}, 'luajit bench/kernels.lua <csv> [options]')

local function fail(msg)
   io.stderr:write('bench/kernels.lua: ' .. msg .. '\n')
   os.exit(1)
end

-- one CSV line's fields ("" quotes a quote inside a quoted field)
local function fields(line)
   local out, i, n = {}, 1, #line
   while i <= n + 1 do
      if line:sub(i, i) == '"' then
         local buf, j = {}, i + 1
         while true do
            local q = line:find('"', j, true)
            if not q then return nil end
            buf[#buf + 1] = line:sub(j, q - 1)
            if line:sub(q + 1, q + 1) == '"' then
               buf[#buf + 1] = '"'
               j = q + 2
            else
               i = q + 1
               break
            end
         end
         out[#out + 1] = table.concat(buf)
         if line:sub(i, i) == ',' then i = i + 1 elseif i <= n then return nil else i = n + 2 end
      else
         local c = line:find(',', i, true) or n + 1
         out[#out + 1] = line:sub(i, c - 1)
         i = c + 1
      end
   end
   return out
end

local NS = {nsecond = 1, ns = 1, usecond = 1e3, us = 1e3, msecond = 1e6, ms = 1e6, second = 1e9, s = 1e9}

local f, err = io.open(opts.csv, 'r')
if not f then fail('cannot read ' .. tostring(err)) end
local col, byName, order, launches, total = nil, {}, {}, 0, 0
local lineNo = 0
for line in f:lines() do
   lineNo = lineNo + 1
   line = line:gsub('\r$', '')
   local row = line:sub(1, 1) == '"' and fields(line) or nil
   if row and not col then
      local idx = {}
      for k, v in ipairs(row) do idx[v] = k end
      if idx['Kernel Name'] and idx['Metric Name'] and idx['Metric Unit'] and idx['Metric Value'] then col = idx end
   elseif row and col and row[col['Metric Name']] == 'gpu__time_duration.sum' then
      local unit = row[col['Metric Unit']]
      local value = tonumber((row[col['Metric Value']] or ''):gsub(',', ''), 10)
      if not NS[unit] or not value then
         fail(string.format('%s:%d: expected a duration, got %q %q', opts.csv, lineNo, tostring(row[col['Metric Value']]),
            tostring(unit)))
      end
      local name = row[col['Kernel Name']]
      local k = byName[name]
      if not k then
         k = {name = name, n = 0, ns = 0}
         byName[name] = k
         order[#order + 1] = k
      end
      k.n, k.ns = k.n + 1, k.ns + value * NS[unit]
      launches, total = launches + 1, total + value * NS[unit]
   end
end
f:close()
if not col then fail(opts.csv .. ': no CSV header with Kernel Name, Metric Name, Metric Unit and Metric Value') end
if launches == 0 then fail(opts.csv .. ': no gpu__time_duration.sum rows (was the step inside profilerStart/Stop?)') end

table.sort(order, function(a, b) return a.ns > b.ns or (a.ns == b.ns and a.name < b.name) end)
print(string.format('kernel time of the profiled region: %d launches, %.3f ms in all', launches, total / 1e6))
print(string.format('  %-44s %8s %10s %10s %7s', 'kernel', 'launches', 'total ms', 'mean us', 'share'))
local function line(name, n, ns)
   print(string.format('  %-44s %8d %10.3f %10.1f %6.1f%%', name, n, ns / 1e6, ns / n / 1e3, 100 * ns / total))
end
local restN, restNs = 0, 0
for i, k in ipairs(order) do
   if i <= opts.top then line(#k.name > 44 and k.name:sub(1, 41) .. '...' or k.name, k.n, k.ns)
   else restN, restNs = restN + k.n, restNs + k.ns end
end
if restN > 0 then line(string.format('(%d other kernels)', #order - opts.top), restN, restNs) end
