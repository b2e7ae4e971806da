--[[
slayer.plot -- curves through gnuplot (Debian's gnuplot-nox), headless.

Each plot writes its data to a temporary file and a gnuplot script, runs
`gnuplot`, and checks that the images appeared; a missing gnuplot is a
clear error naming the package to install.  PNG through the pngcairo
terminal, SVG through svg.
]]
local L = require 'slayer.ffi'
local M = {}

local function shellQuote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function gnuplotAvailable()
   local p = io.popen('command -v gnuplot 2>/dev/null')
   local out = p:read('*a')
   p:close()
   return out:match('%S') ~= nil
end

--- Run a gnuplot script; raise with gnuplot's own message on failure.
function M.run(script, outputs)
   if not gnuplotAvailable() then
      L.raise('plot: gnuplot not found; install it (Debian: apt-get install gnuplot-nox)')
   end
   local path = os.tmpname()
   local f = assert(io.open(path, 'w'))
   f:write(script)
   f:close()
   local p = io.popen('gnuplot ' .. shellQuote(path) .. ' 2>&1')
   local msg = p:read('*a')
   local ok = p:close()
   os.remove(path)
   for _, o in ipairs(outputs or {}) do
      local g = io.open(o, 'rb')
      if not g then L.raise('plot: gnuplot did not write ' .. o .. (msg ~= '' and (': ' .. msg) or '')) end
      g:close()
   end
   if ok == false and msg ~= '' then L.raise('plot: gnuplot failed: ' .. msg) end
   return outputs
end

local function q(s) return '"' .. tostring(s):gsub('\\', '\\\\'):gsub('"', '\\"') .. '"' end

--- Series: list of {name =, values = {...} (false/nil entries skipped)}.
-- opts: output (path without extension), title, xlabel, ylabel, logy.
function M.lines(series, opts)
   local data = os.tmpname()
   local f = assert(io.open(data, 'w'))
   local n, positive = 0, false
   for _, s in ipairs(series) do
      n = math.max(n, #s.values)
      for _, v in ipairs(s.values) do if type(v) == 'number' and v > 0 then positive = true end end
   end
   if opts.logy and not positive then opts = setmetatable({logy = false}, {__index = opts}) end
   for i = 1, n do
      local cols = {tostring(i - 1)}
      for _, s in ipairs(series) do
         local v = s.values[i]
         cols[#cols + 1] = (type(v) == 'number' and v == v and (not opts.logy or v > 0)) and string.format('%.9g', v) or '?'
      end
      f:write(table.concat(cols, ' '), '\n')
   end
   f:close()
   local outputs = {opts.output .. '.png', opts.output .. '.svg'}
   for _, o in ipairs(outputs) do os.remove(o) end
   local plots = {}
   for k, s in ipairs(series) do
      plots[#plots + 1] = string.format('%s using 1:%d with lines lw 2 title %s', q(data), k + 1, q(s.name))
   end
   local body = {
      'set datafile missing "?"',
      'set grid',
      'set key top right',
      'set xlabel ' .. q(opts.xlabel or 'Epoch'),
      'set ylabel ' .. q(opts.ylabel or ''),
   }
   if opts.title then body[#body + 1] = 'set title ' .. q(opts.title) end
   if opts.logy then body[#body + 1] = 'set logscale y' end
   local plotCmd = n > 0 and ('plot ' .. table.concat(plots, ', ')) or 'plot [0:1] [0:1] NaN notitle'
   local script = table.concat({
      table.concat(body, '\n'),
      'set terminal pngcairo size 800,500 enhanced font "sans,10"',
      'set output ' .. q(outputs[1]),
      plotCmd,
      'set terminal svg size 800,500 dynamic enhanced',
      'set output ' .. q(outputs[2]),
      plotCmd,
      'set output',
   }, '\n') .. '\n'
   local ok, err = pcall(M.run, script, outputs)
   os.remove(data)
   if not ok then L.raise(err) end
   return outputs
end

--- The two figures of the reference's learningStats.plot.
function M.learningCurves(stats, prefix, title)
   local files = {}
   for _, o in ipairs(M.lines({
      {name = 'Training', values = stats.training.lossLog},
      {name = 'Testing', values = stats.testing.lossLog},
   }, {output = prefix .. 'loss', ylabel = 'Loss', logy = true, title = title})) do files[#files + 1] = o end
   for _, o in ipairs(M.lines({
      {name = 'Training', values = stats.training.accuracyLog},
      {name = 'Testing', values = stats.testing.accuracyLog},
   }, {output = prefix .. 'accuracy', ylabel = 'Accuracy', title = title})) do files[#files + 1] = o end
   return files
end

return M
