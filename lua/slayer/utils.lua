--[[
snn.utils -- small helpers for training scripts: command-line options, a
monotonic clock and medians, JSON output, folders, and counting correct
classifications; and the reference's aliases snn.utils.quantize,
snn.utils.stats, snn.utils.optim and snn.utils.printConfig (src/utils.py).

    local opt = snn.utils.options(arg, {
       epochs = {90, 'number of epochs', integer = true, min = 1},
       data   = {'../shared/data/nmnist-small', 'N-MNIST-style folder'},
       full   = {false, 'train on the whole set'},
    }, 'luajit examples/nmnist-mlp/train.lua [options]')
]]
local L = require 'slayer.ffi'
local ffi = require 'ffi'

local M = {}

pcall(ffi.cdef, [[
typedef struct { long tv_sec; long tv_nsec; } sl_utils_timespec;
int clock_gettime(int clk, sl_utils_timespec *ts);
]])
local tsb = ffi.new('sl_utils_timespec')

--- Seconds on a monotonic clock (or on the POSIX clock `clock`: 2 is the
-- process's CPU time).
function M.now(clock)
   if clock ~= nil and not L.isWhole(clock, 0, 2 ^ 31 - 1) then
      L.raise('now: expected a POSIX clock id (a whole number), got ' .. (type(clock) == 'number' and tostring(clock) or type(clock)))
   end
   if ffi.C.clock_gettime(clock or 1, tsb) ~= 0 then L.raise('now: no clock ' .. clock .. ' on this system') end
   return tonumber(tsb.tv_sec) + tonumber(tsb.tv_nsec) * 1e-9
end

--- Median of a list of numbers (the list is not changed).
function M.median(xs)
   if type(xs) ~= 'table' then L.raise('median: expected a list of numbers, got ' .. type(xs)) end
   local s = {}
   for i, v in ipairs(xs) do
      if type(v) ~= 'number' then L.raise('median: expected a list of numbers, got a ' .. type(v) .. ' at ' .. i) end
      s[i] = v
   end
   table.sort(s)
   local n = #s
   if n == 0 then return nil end
   return n % 2 == 1 and s[(n + 1) / 2] or 0.5 * (s[n / 2] + s[n / 2 + 1])
end

--- Median seconds of fn() over reps calls, after `warmup` calls (default 1).
function M.timeit(fn, reps, warmup)
   local mt = type(fn) == 'table' and getmetatable(fn)
   if type(fn) ~= 'function' and not (mt and mt.__call) then
      L.raise('timeit: expected a function to time, got ' .. type(fn))
   end
   for _, a in ipairs({{'reps', reps, 1}, {'warmup', warmup or 1, 0}}) do
      if not L.isWhole(a[2], a[3], 2 ^ 31 - 1) then
         L.raise('timeit: expected ' .. a[1] .. ' as a whole number >= ' .. a[3] .. ', got '
            .. (type(a[2]) == 'number' and tostring(a[2]) or type(a[2])))
      end
   end
   for _ = 1, warmup or 1 do fn() end
   local ts = {}
   for i = 1, reps do
      local t0 = M.now()
      fn()
      ts[i] = M.now() - t0
   end
   return M.median(ts), ts
end

--- How many samples of a batch the network classified right: the class
-- with most output spikes (snn.predict.getClass) against 1-based labels
-- (a Lua list, or a tensor of N values).
function M.correct(output, labels)
   local T = require('slayer.tensor')
   if not T.isTensor(output) or output:dim() ~= 5 then
      L.raise('correct: expected the output as a 5-D (N, C, H, W, T) spike tensor, got ' .. T.typeName(output))
   end
   if T.isTensor(labels) then labels = labels:detach():cpu():contiguous():view({labels:numel()}):totable() end
   if type(labels) ~= 'table' then L.raise('correct: expected labels as a list or a tensor, got ' .. type(labels)) end
   local classes = output:size(2) * output:size(3) * output:size(4)
   -- a label outside 1..classes (a dataset's "no class" mark: the loaders
   -- give it no one-hot target) is never predicted, so it counts as wrong
   for i = 1, #labels do
      if not L.isWhole(labels[i], -2 ^ 31, 2 ^ 31 - 1) then
         L.raise('correct: label ' .. i .. ' is ' .. L.valueStr(labels[i]) .. ', expected a whole-number class '
            .. '(1-based: 1..' .. classes .. ')')
      end
   end
   local pred, n = require('slayer.predict').getClass(output):totable(), 0
   if #labels ~= #pred then
      L.raise('correct: ' .. #labels .. ' labels for a batch of ' .. #pred .. ' outputs')
   end
   for i, l in ipairs(labels) do if pred[i] == l then n = n + 1 end end
   return n
end

--- Run net over a loader without gradients; returns accuracy, the mean of
-- lossFn(output, target) per sample (nil without lossFn), the number
-- correct, the number of samples and the summed loss.
function M.evaluate(net, loader, lossFn)
   local function callable(f)
      local mt = type(f) == 'table' and getmetatable(f)
      return type(f) == 'function' or (mt and mt.__call ~= nil) or false
   end
   if not callable(net) then L.raise('evaluate: expected a network (a module or function), got ' .. type(net)) end
   if type(loader) ~= 'table' or type(loader.iter) ~= 'function' then
      L.raise('evaluate: expected a loader with :iter() (snn.data.Loader), got ' .. type(loader))
   end
   if lossFn ~= nil and not callable(lossFn) then
      L.raise('evaluate: expected lossFn as a function (output, target), got ' .. type(lossFn))
   end
   local correct, total, lossSum = 0, 0, 0
   require('slayer.autograd').noGrad(function()
      for input, target, labels in loader:iter() do
         local output = net(input)
         correct = correct + M.correct(output, labels)
         total = total + #labels
         if lossFn then lossSum = lossSum + lossFn(output, target):item() end
      end
   end)
   return correct / math.max(total, 1), lossFn and lossSum / math.max(total, 1) or nil, correct, total, lossSum
end

-- Command-line options.  A spec maps each option name to {default, help}
-- plus optional fields that say what a value must be:
--   type      'number', 'string' or 'boolean'; by default the default's type
--             (an option whose default is nil needs it)
--   integer   true: a whole number
--   min, max  inclusive bounds; above, below: exclusive ones
--   choices   the list of allowed values
--   check     function(value) giving nil for a good value, or what was
--             expected (a phrase such as 'a list like 512,4096')
-- Numbers are always finite (tonumber takes 'nan' and 'inf').  The array
-- part of a spec names required positional arguments, {name, help}, in
-- order; their values land in opt[name].

local function kind(s) return s.type or type(s[1]) end

local boolWords = {['true'] = true, yes = true, ['1'] = true, ['false'] = false, no = false, ['0'] = false}

-- bounds as written (tostring gives 9.007199254741e+15 for 2^53)
local function num(x) return x % 1 == 0 and math.abs(x) <= 2 ^ 53 and string.format('%d', x) or tostring(x) end

local function expected(s)
   if s.choices then
      local names = {}
      for i, c in ipairs(s.choices) do names[i] = tostring(c) end
      return 'one of ' .. table.concat(names, ', ')
   end
   local k = kind(s)
   if k == 'boolean' then return 'true or false' end
   if k ~= 'number' then return 'a value' end
   local text, lo, hi = s.integer and 'a whole number' or 'a number', nil, nil
   if s.min then lo = ' >= ' .. num(s.min) elseif s.above then lo = ' > ' .. num(s.above) end
   if s.max then hi = ' <= ' .. num(s.max) elseif s.below then hi = ' < ' .. num(s.below) end
   if s.min and s.max then return text .. ' from ' .. num(s.min) .. ' to ' .. num(s.max) end
   if lo and hi then return text .. lo .. ' and' .. hi end
   return text .. (lo or hi or '')
end

-- the value of option `name` from its text, or nil and the complaint
local function convert(name, s, text)
   local function bad(what) return nil, '--' .. name .. ' expects ' .. what .. ', got ' .. (text == '' and "''" or text) end
   local k, v = kind(s), text
   if k == 'boolean' then
      v = boolWords[text:lower()]
      if v == nil then return bad('true or false') end
   elseif k == 'number' then
      v = tonumber(text)
      if not v or v ~= v or v == math.huge or v == -math.huge
         or (s.integer and v % 1 ~= 0) or (s.min and v < s.min) or (s.max and v > s.max)
         or (s.above and v <= s.above) or (s.below and v >= s.below) then
         return bad(expected(s))
      end
   end
   if s.choices then
      local found = false
      for _, c in ipairs(s.choices) do found = found or c == v end
      if not found then return bad(expected(s)) end
   end
   if s.check then
      local what = s.check(v)
      if what then return bad(what) end
   end
   return v
end

local function usage(spec, title)
   local names = {}
   for k in pairs(spec) do if type(k) == 'string' then names[#names + 1] = k end end
   table.sort(names)
   local lines = {'usage: ' .. (title or 'script [options]'), ''}
   if spec[1] then
      lines[#lines + 1] = 'arguments:'
      for _, p in ipairs(spec) do lines[#lines + 1] = string.format('  %-20s %s', '<' .. p[1] .. '>', p[2] or '') end
      lines[#lines + 1] = ''
   end
   lines[#lines + 1] = 'options:'
   for _, k in ipairs(names) do
      local s = spec[k]
      local arg = kind(s) == 'boolean' and '' or ' <' .. kind(s) .. '>'
      local notes = {}
      if s.choices then notes[#notes + 1] = expected(s) end
      if s[1] ~= nil then notes[#notes + 1] = 'default: ' .. tostring(s[1]) end
      lines[#lines + 1] = string.format('  --%-18s %s%s', k .. arg, s[2] or '',
         #notes > 0 and ' (' .. table.concat(notes, '; ') .. ')' or '')
   end
   lines[#lines + 1] = '  --help               show this message'
   return table.concat(lines, '\n')
end

--- The checking half of options: parse `--name value`, `--name=value`,
-- `--flag` (or `--flag true|false`) and positional arguments against spec.
-- Returns opt; or nil and a message naming the option and the bad value;
-- or false when the arguments ask for --help (or -h).
function M.parseOptions(args, spec)
   args = args or {}
   if type(args) ~= 'table' then L.raise('options: expected the arguments as a list of strings, got ' .. type(args)) end
   for i = 1, #args do
      if type(args[i]) ~= 'string' then
         L.raise('options: expected the arguments as a list of strings, got a ' .. type(args[i]) .. ' at ' .. i)
      end
   end
   if type(spec) ~= 'table' then L.raise('options: expected a spec table {name = {default, help}}, got ' .. type(spec)) end
   for _, a in ipairs(args) do
      if a == '--help' or a == '-h' then return false end
   end
   local opt, positional = {}, 0
   for k, s in pairs(spec) do
      if type(k) == 'string' then
         if type(s) ~= 'table' or (s.type or s[1]) == nil then
            L.raise('options: spec of --' .. k .. ' needs a default or a type')
         end
         opt[k] = s[1]
      end
   end
   local i, lastFlag = 1, nil
   while i <= #args do
      local a = args[i]
      if a:sub(1, 1) == '-' and #a > 1 then
         local name, inline = a:match('^%-%-([%w_][%w_%-]*)=(.*)$')
         name = name or a:match('^%-%-([%w_][%w_%-]*)$')
         local s = name and spec[name]
         if not s then return nil, 'unknown option ' .. a end
         local text, err = inline, nil
         lastFlag = nil
         if kind(s) == 'boolean' and text == nil then
            local nextArg = args[i + 1]
            if nextArg and boolWords[nextArg:lower()] ~= nil then
               text, i = nextArg, i + 1
            else
               text, lastFlag = 'true', name
            end
         elseif text == nil then
            text = args[i + 1]
            if text == nil or text:sub(1, 2) == '--' then return nil, '--' .. name .. ' needs a value' end
            i = i + 1
         end
         opt[name], err = convert(name, s, text)
         if opt[name] == nil then return nil, err end
      else
         positional = positional + 1
         if not spec[positional] then
            if lastFlag then return nil, '--' .. lastFlag .. ' expects true or false (or nothing), got ' .. a end
            return nil, 'unexpected argument ' .. a
         end
         opt[spec[positional][1]] = a
         lastFlag = nil
      end
      i = i + 1
   end
   if spec[positional + 1] then
      local p = spec[positional + 1]
      return nil, 'missing <' .. p[1] .. '>' .. (p[2] and ' (' .. p[2] .. ')' or '')
   end
   return opt
end

--- Options of a command-line script (see parseOptions; title is the usage
-- line, e.g. 'luajit examples/nmnist-mlp/train.lua [options]').  --help
-- prints the usage and exits 0; a mistake prints `<script>: <message>` and
-- the usage line to stderr and exits 2, before the script has done anything.
function M.options(args, spec, title)
   local opt, err = M.parseOptions(args, spec)
   if opt == false then
      print(usage(spec, title))
      os.exit(0)
   elseif not opt then
      local prog = title and (title:match('^luajit%s+(%S+)') or title:match('^(%S+)')) or (args and args[0]) or 'script'
      io.stderr:write(prog .. ': ' .. err .. '\nusage: ' .. (title or prog .. ' [options]') .. ' (--help lists the options)\n')
      os.exit(2)
   end
   return opt
end

local function encode(v, out)
   local t = type(v)
   if v == nil then out[#out + 1] = 'null'
   elseif t == 'boolean' then out[#out + 1] = tostring(v)
   elseif t == 'number' then
      if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = 'null'
      elseif v % 1 == 0 and math.abs(v) < 2 ^ 53 then out[#out + 1] = string.format('%.0f', v)
      else out[#out + 1] = string.format('%.10g', v) end
   elseif t == 'string' then
      out[#out + 1] = '"' .. v:gsub('[%c"\\]', function(c)
         local map = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
         return map[c] or string.format('\\u%04x', c:byte())
      end) .. '"'
   elseif t == 'table' then
      -- out.open: the tables being encoded around this one (a cycle never ends)
      out.open = out.open or {}
      if out.open[v] then L.raise('json: cannot encode a table that contains itself') end
      out.open[v] = true
      if #v > 0 or next(v) == nil then
         out[#out + 1] = '['
         for i, x in ipairs(v) do
            if i > 1 then out[#out + 1] = ',' end
            encode(x, out)
         end
         out[#out + 1] = ']'
      else
         local keys = {}
         for k in pairs(v) do keys[#keys + 1] = tostring(k) end
         table.sort(keys)
         out[#out + 1] = '{'
         for i, k in ipairs(keys) do
            if i > 1 then out[#out + 1] = ',' end
            encode(k, out)
            out[#out + 1] = ':'
            local val = v[k]
            if val == nil then val = v[tonumber(k)] end
            encode(val, out)
         end
         out[#out + 1] = '}'
      end
      out.open[v] = nil
   else
      L.raise('json: cannot encode a ' .. t)
   end
end

--- JSON text of a Lua value (objects with sorted keys).
function M.json(v)
   local out = {}
   encode(v, out)
   return table.concat(out)
end

pcall(ffi.cdef, [[
int mkdir(const char *path, unsigned int mode);
void *opendir(const char *name);
int closedir(void *dir);
char *strerror(int errnum);
]])

local function isDir(path)
   local d = ffi.C.opendir(path)
   if d == nil then return false end
   ffi.C.closedir(d)
   return true
end

--- Create a folder and its parents (no shell involved); an existing folder
-- is fine.  Errors name the part that could not be created, and why.
function M.mkdir(path)
   if type(path) ~= 'string' or path == '' then
      L.raise('mkdir: expected a folder path, got ' .. (path == '' and 'an empty string' or type(path)))
   end
   local sofar = path:sub(1, 1) == '/' and '/' or ''
   for part in path:gmatch('[^/]+') do
      sofar = sofar .. part
      if ffi.C.mkdir(sofar, 493) ~= 0 then -- 0755
         local err = ffi.errno()
         if not isDir(sofar) then
            local why = M.exists(sofar) and 'it exists and is not a folder' or ffi.string(ffi.C.strerror(err))
            L.raise("mkdir: cannot create '" .. sofar .. "': " .. why)
         end
      end
      sofar = sofar .. '/'
   end
   return path
end

function M.exists(path)
   if type(path) ~= 'string' then L.raise('exists: expected a file path, got ' .. type(path)) end
   local f = io.open(path, 'rb')
   if f then f:close() return true end
   return false
end

-- each {path, text} to path.tmp, then every temporary renamed into place;
-- text is a string, or a function(emit) that hands it over in chunks
local function writeAll(files, fname)
   local tmps = {}
   local function abort(msg)
      for _, tmp in ipairs(tmps) do os.remove(tmp) end
      L.raise(fname .. ': ' .. msg)
   end
   for _, file in ipairs(files) do
      local path, text = file[1], file[2]
      local tmp = path .. '.tmp'
      local f, err = io.open(tmp, 'wb')
      if not f then abort('cannot open ' .. err) end
      tmps[#tmps + 1] = tmp
      local ok, werr
      if type(text) == 'function' then
         ok, werr = pcall(text, function(chunk)
            local wok, e = f:write(chunk)
            if not wok then error(e, 0) end
         end)
      else
         ok, werr = f:write(text)
      end
      local closed, cerr = f:close()
      if ok then ok, werr = closed, cerr end
      if not ok then abort("writing '" .. path .. "' failed: " .. tostring(werr)) end
   end
   for i, file in ipairs(files) do
      local ok, err = os.rename(tmps[i], file[1])
      if not ok then abort("writing '" .. file[1] .. "' failed: " .. tostring(err)) end
   end
end


--- Write text to path through a temporary file (path.tmp, renamed into
-- place): a failure leaves neither a half-written path nor the temporary.
function M.writeFile(path, text)
   L.checkPath('writeFile', path)
   if type(text) ~= 'string' and type(text) ~= 'number' then
      L.raise('writeFile: expected the text to write (a string), got ' .. type(text))
   end
   writeAll({{path, text}}, 'writeFile')
end

--- Write several files, all or none: files = {{path, text}, ...}, where
-- text is a string or a function(emit) that hands the text over in chunks.
-- Every file goes to path.tmp first; the temporaries are renamed into place
-- once all are written, and removed on any failure, which raises an error
-- naming fname (default 'writeFiles').  Only a failing rename (a folder in
-- the way) can leave the files renamed before it.
function M.writeFiles(files, fname)
   fname = fname or 'writeFiles'
   if type(files) ~= 'table' then L.raise(fname .. ': expected a list of {path, text}, got ' .. type(files)) end
   for i, file in ipairs(files) do
      if type(file) ~= 'table' then L.raise(fname .. ': file ' .. i .. ' is a ' .. type(file) .. ', not {path, text}') end
      L.checkPath(fname, file[1], 'a file path for file ' .. i)
      local tt = type(file[2])
      if tt ~= 'string' and tt ~= 'number' and tt ~= 'function' then
         L.raise(fname .. ': file ' .. i .. ' has text of type ' .. tt)
      end
   end
   writeAll(files, fname)
end

-- the reference's snn.utils aliases, loaded on first use (stats requires
-- this module, so they cannot be required here)
local ALIASES = {
   quantize = function() return require('slayer.quantize').quantize end,
   stats = function() return require 'slayer.stats' end,
   optim = function() return require 'slayer.optim' end,
   -- printConfig(tree): every entry of a parameter tree, as Params:print()
   printConfig = function()
      return function(tree, out)
         if type(tree) ~= 'table' then
            L.raise('printConfig: expected a parameter tree (a table), got ' .. type(tree))
         end
         -- Params.print reads the tree itself: a copy would lose the file's
         -- key order and float spellings, kept beside the original tables
         return require('slayer.params').Params.print(tree, nil, out)
      end
   end,
}

return setmetatable(M, {__index = function(t, k)
   local make = ALIASES[k]
   if not make then return nil end
   local v = make()
   rawset(t, k, v)
   return v
end})
