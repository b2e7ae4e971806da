--[[
slayer.plot -- curves through gnuplot (Debian's gnuplot-nox), headless.

Each plot writes its data to a temporary file and a gnuplot script, runs
`gnuplot`, and checks that the images appeared; a missing gnuplot is a
clear error naming the package to install.  PNG through the pngcairo
terminal, SVG through svg.

A figure's two files are written all or none: gnuplot draws into
output.png.tmp and output.svg.tmp, which are renamed into place only when
both are complete (and removed otherwise).  A figure with no finite point
to draw (no epochs yet, accuracy never above 0, every loss NaN or
infinite) is drawn empty with a note saying so, so the files are there all
the same.

User text goes into the script single-quoted (gnuplot expands neither
backslashes nor `command` substitutions there; a quote is joined on as
"'") and noenhanced (drawn as written); control characters in titles, labels and series names become
spaces, and an output path holding one is refused.
]]
local L = require 'slayer.ffi'
local M = {}

local function shellQuote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- a gnuplot string expression for s: single-quoted runs (gnuplot expands
-- neither backslashes nor `commands` there) joined by . to "'" for each
-- quote, since gnuplot's '' inside single quotes is unreliable ('x''''' fails)
local function q(s)
   s = tostring(s):gsub('%c', ' ')
   if s == '' then return "''" end
   local parts = {}
   for run, quotes in s:gmatch("([^']*)('*)") do
      if run ~= '' then parts[#parts + 1] = "'" .. run .. "'" end
      for _ = 1, #quotes do parts[#parts + 1] = [["'"]] end
   end
   return table.concat(parts, '.')
end

-- a path as text for an error message, its control characters as \ddd
local function shown(s) return "'" .. s:gsub('%c', function(c) return '\\' .. c:byte() end) .. "'" end

local function checkPath(path, fname, what)
   L.checkPath(fname, path, 'an ' .. what .. ' (a string)')
   if path:find('%c') then
      L.raise(fname .. ': the ' .. what .. ' ' .. shown(path) .. ' contains a control character')
   end
end

local function checkText(v, fname, what)
   if v ~= nil and type(v) ~= 'string' and type(v) ~= 'number' then
      L.raise(fname .. ': ' .. what .. ' must be a string, got ' .. type(v))
   end
end

local function gnuplotAvailable()
   local p = io.popen('command -v gnuplot 2>/dev/null')
   local out = p:read('*a')
   p:close()
   return out:match('%S') ~= nil
end

-- gnuplot stops a script at its first error, so this line printed last
-- tells a complete run from a failed one (popen's close gives no status)
local DONE = 'slayer-plot: done'

-- run a gnuplot script that writes the files in outputs: true, or nil and
-- why (gnuplot's own message) when it stops early or a file is missing or empty
local function runScript(script, outputs)
   if not gnuplotAvailable() then
      return nil, 'gnuplot not found; install it (Debian: apt-get install gnuplot-nox)'
   end
   local path = os.tmpname()
   local f = assert(io.open(path, 'w'))
   f:write(script, "\nset print '-'\nprint '", DONE, "'\n")
   f:close()
   local p = io.popen('gnuplot ' .. shellQuote(path) .. ' 2>&1')
   local msg = p:read('*a')
   p:close()
   os.remove(path)
   local complete = msg:find(DONE, 1, true) ~= nil
   msg = msg:gsub('\n?' .. DONE:gsub('%p', '%%%0') .. '\n?', ''):gsub('^%s+', ''):gsub('%s+$', '')
   for _, o in ipairs(outputs or {}) do
      local g = io.open(o, 'rb')
      local size = g and g:seek('end') or 0
      if g then g:close() end
      if size == 0 then return nil, 'gnuplot did not write ' .. o .. (msg ~= '' and (': ' .. msg) or '') end
   end
   if not complete then return nil, 'gnuplot failed' .. (msg ~= '' and (': ' .. msg) or '') end
   return true
end

--- Run a gnuplot script that writes the files in outputs; raise with
-- gnuplot's own message when it stops early or a file is missing or empty.
function M.run(script, outputs)
   if type(script) ~= 'string' then L.raise('plot.run: expected a gnuplot script (a string), got ' .. type(script)) end
   if type(outputs) ~= 'table' then L.raise('plot.run: expected a list of the output paths, got ' .. type(outputs)) end
   for i, o in ipairs(outputs) do
      if type(o) ~= 'string' then L.raise('plot.run: expected output paths as strings, got a ' .. type(o) .. ' at ' .. i) end
   end
   local ok, err = runScript(script, outputs)
   if not ok then L.raise('plot.run: ' .. err) end
   return outputs
end

local finite = L.isFinite

local function checkSeries(series, fname)
   if type(series) ~= 'table' then L.raise(fname .. ': expected a list of series {name =, values =}, got ' .. type(series)) end
   for k, s in ipairs(series) do
      if type(s) ~= 'table' or type(s.values) ~= 'table' then
         L.raise(fname .. ': series ' .. k .. ' must be a table {name =, values = {...}}')
      end
      checkText(s.name, fname, 'the name of series ' .. k)
      for i = 1, #s.values do
         local v = s.values[i]
         if v ~= nil and v ~= false and type(v) ~= 'number' then
            L.raise(fname .. ': series ' .. k .. ' value ' .. i .. ' is a ' .. type(v) .. ' (expected a number, or false when missing)')
         end
      end
   end
end

local function lines(series, opts, fname)
   checkSeries(series, fname)
   if type(opts) ~= 'table' then L.raise(fname .. ': expected options {output =, ...}, got ' .. type(opts)) end
   checkPath(opts.output, fname, 'output path')
   checkText(opts.title, fname, 'title')
   checkText(opts.xlabel, fname, 'xlabel')
   checkText(opts.ylabel, fname, 'ylabel')
   local n, positive, any = 0, false, false
   for _, s in ipairs(series) do
      n = math.max(n, #s.values)
      for i = 1, #s.values do
         local v = s.values[i]
         if finite(v) then any = true; positive = positive or v > 0 end
      end
   end
   local logy = opts.logy and positive
   local function plottable(v) return finite(v) and (not logy or v > 0) end

   local outputs = {opts.output .. '.png', opts.output .. '.svg'}
   local tmps = {outputs[1] .. '.tmp', outputs[2] .. '.tmp'}
   local data = os.tmpname()
   local function cleanup()
      os.remove(data)
      for _, t in ipairs(tmps) do os.remove(t) end
   end
   local f = assert(io.open(data, 'w'))
   for i = 1, n do
      local cols = {tostring(i - 1)}
      for _, s in ipairs(series) do
         local v = s.values[i]
         cols[#cols + 1] = plottable(v) and string.format('%.9g', v) or '?'
      end
      f:write(table.concat(cols, ' '), '\n')
   end
   f:close()
   local body = {
      'set datafile missing "?"',
      'set grid',
      'set key top right',
      'set xlabel ' .. q(opts.xlabel or 'Epoch') .. ' noenhanced',
      'set ylabel ' .. q(opts.ylabel or '') .. ' noenhanced',
   }
   if opts.title then body[#body + 1] = 'set title ' .. q(opts.title) .. ' noenhanced' end
   local plotCmd
   if any then
      if logy then body[#body + 1] = 'set logscale y' end
      local plots = {}
      for k, s in ipairs(series) do
         -- a point with no plottable neighbour draws no line: mark the points then
         local isolated = false
         for i = 1, n do
            if plottable(s.values[i]) and not plottable(s.values[i - 1]) and not plottable(s.values[i + 1]) then isolated = true end
         end
         plots[#plots + 1] = string.format('%s using 1:%d with %s lw 2 title %s noenhanced', q(data), k + 1,
            isolated and 'linespoints pt 7 ps 0.6' or 'lines', q(s.name or ''))
      end
      plotCmd = 'plot ' .. table.concat(plots, ', ')
   else
      local note = n == 0 and 'no epochs to plot yet' or 'nothing to plot: every value is missing, NaN or infinite'
      body[#body + 1] = 'set label 1 ' .. q(note) .. ' at graph 0.5, graph 0.5 center noenhanced'
      plotCmd = 'plot [0:1] [0:1] NaN notitle'
   end
   local script = table.concat({
      table.concat(body, '\n'),
      'set terminal pngcairo size 800,500 enhanced font "sans,10"',
      'set output ' .. q(tmps[1]),
      plotCmd,
      'set terminal svg size 800,500 dynamic enhanced',
      'set output ' .. q(tmps[2]),
      plotCmd,
      'set output',
   }, '\n') .. '\n'
   -- a folder in the way would fail the second rename after the first: refuse it now
   for _, o in ipairs(outputs) do
      local g, rerr = io.open(o, 'rb'), nil
      if g then
         rerr = select(2, g:read(1)) -- 'Is a directory'
         g:close()
      end
      if rerr then
         cleanup()
         L.raise(fname .. ": cannot write '" .. o .. "': " .. tostring(rerr))
      end
   end
   -- open each temporary here first: a clear error for a missing folder, and
   -- an empty file, so a stale temporary cannot pass for gnuplot's output
   for i, t in ipairs(tmps) do
      local g, gerr = io.open(t, 'wb')
      if not g then
         cleanup()
         L.raise(fname .. ": cannot write '" .. outputs[i] .. "': " .. tostring(gerr))
      end
      g:close()
   end
   local ok, err = runScript(script, tmps)
   if not ok then
      cleanup()
      L.raise(fname .. ": could not draw '" .. opts.output .. ".png' and '.svg': " .. err)
   end
   for i, t in ipairs(tmps) do
      local renamed, rerr = os.rename(t, outputs[i])
      if not renamed then
         cleanup()
         L.raise(fname .. ": writing '" .. outputs[i] .. "' failed: " .. tostring(rerr))
      end
   end
   os.remove(data)
   return outputs
end

--- Series: list of {name =, values = {...} (false/nil entries skipped)}.
-- opts: output (path without extension), title, xlabel, ylabel, logy
-- (values <= 0 are left out; ignored when no value is positive).
-- Writes output.png and output.svg, both or neither, and returns them.
-- fname names the caller in errors (default 'plot.lines').
function M.lines(series, opts, fname)
   return lines(series, opts, fname or 'plot.lines')
end

--- The two figures of the reference's learningStats.plot: prefix..'loss'
-- (log scale) and prefix..'accuracy', each as .png and .svg.  Returns the
-- four files.  fname names the caller in errors.
function M.learningCurves(stats, prefix, title, fname)
   fname = fname or 'plot.learningCurves'
   if type(stats) ~= 'table' or type(stats.training) ~= 'table' or type(stats.testing) ~= 'table' then
      L.raise(fname .. ': expected learning statistics (snn.stats()), got ' .. type(stats))
   end
   if type(prefix) ~= 'string' then L.raise(fname .. ': expected a path prefix (a string), got ' .. type(prefix)) end
   local files = {}
   for _, o in ipairs(lines({
      {name = 'Training', values = stats.training.lossLog},
      {name = 'Testing', values = stats.testing.lossLog},
   }, {output = prefix .. 'loss', ylabel = 'Loss', logy = true, title = title}, fname)) do files[#files + 1] = o end
   for _, o in ipairs(lines({
      {name = 'Training', values = stats.training.accuracyLog},
      {name = 'Testing', values = stats.testing.accuracyLog},
   }, {output = prefix .. 'accuracy', ylabel = 'Accuracy', title = title}, fname)) do files[#files + 1] = o end
   return files
end

return M
