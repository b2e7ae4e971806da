--[[
snn.params -- network parameter files (the reference's yamlParams).

    local p = snn.params('network.yaml')     -- read through libyaml
    local p = snn.params{simulation = {Ts = 1, tSample = 300}, ...}
    print(p.neuron.theta, p['simulation']['Ts'], p.layer[1].dim)
    p:save('copy.yaml')                      -- block style, keys sorted
    p:print('neuron')                        -- the reference's printConfig layout

Plain scalars are typed with the YAML 1.1 rules PyYAML applies (so files
mean here what they mean to the reference): `10` is an integer, `1.0` and
`.5` are floats, `1e-8` and `1.0e8` are strings (a float needs a dot and a
signed exponent), `true/yes/on` in any PyYAML spelling are booleans (also as
keys: `tgtSpikeCount: {true: 60, false: 10}`), `010` is octal 8, `0x1F`
hex, `1_000` is 1000, `~`/`null`/empty are null.  Quoted scalars stay
strings; the tags !!str !!int !!float !!bool !!null are honoured.  Nulls
read as nil (the key is absent in Lua).  Anchors, aliases and `<<` merge
keys work.  Sequences become Lua arrays (1-based).
]]
local ffi = require 'ffi'
local L = require 'slayer.ffi'
local utils = require 'slayer.utils'

local C = L.C

local M = {}
local Params = {}
Params.__index = Params
M.Params = Params

---------------------------------------------------------------------------
-- YAML 1.1 implicit typing of plain scalars (PyYAML's resolver)
---------------------------------------------------------------------------

local BOOLS = {
   yes = true, Yes = true, YES = true, ['true'] = true, True = true, TRUE = true, on = true, On = true, ON = true,
   no = false, No = false, NO = false, ['false'] = false, False = false, FALSE = false, off = false, Off = false,
   OFF = false,
}
local NULLS = {[''] = true, ['~'] = true, null = true, Null = true, NULL = true}

local function stripSign(s)
   local c = s:sub(1, 1)
   if c == '-' or c == '+' then return c, s:sub(2) end
   return '', s
end

-- a:b:c (each part after the first is [0-5]?[0-9])
local function sexagesimalParts(body)
   local parts = {}
   for p in (body .. ':'):gmatch('([^:]*):') do parts[#parts + 1] = p end
   if #parts < 2 then return nil end
   if not parts[1]:match('^[0-9][0-9_]*$') then return nil end
   for i = 2, #parts do
      if not parts[i]:match('^[0-5]?[0-9]$') then return nil end
   end
   return parts
end

local function isInt(s)
   local _, b = stripSign(s)
   if b:match('^0b[01_]+$') then return true end
   if b:match('^0[0-7_]+$') then return true end
   if b == '0' or b:match('^[1-9][0-9_]*$') then return true end
   if b:match('^0x[0-9a-fA-F_]+$') then return true end
   if b:match('^[1-9]') and sexagesimalParts(b) then return true end
   return false
end

local function isFloat(s)
   local sign, b = stripSign(s)
   -- [0-9][0-9_]*.[0-9_]*([eE][-+][0-9]+)?
   local m, e = b:match('^[0-9][0-9_]*%.[0-9_]*(.-)$'), nil
   if m then
      if m == '' or m:match('^[eE][-+][0-9]+$') then return true end
   end
   -- .[0-9_]+([eE][-+][0-9]+)?   (no sign allowed)
   if sign == '' then
      e = b:match('^%.[0-9_]+(.-)$')
      if e and (e == '' or e:match('^[eE][-+][0-9]+$')) then return true end
   end
   -- sexagesimal float
   local head, frac = b:match('^(.-)%.([0-9_]*)$')
   if head and head:find(':') and sexagesimalParts(head) then return true end
   if b == '.inf' or b == '.Inf' or b == '.INF' then return true end
   if sign == '' and (b == '.nan' or b == '.NaN' or b == '.NAN') then return true end
   return false
end

local function toInt(s)
   local sign, b = stripSign(s:gsub('_', ''))
   local v
   if b == '0' then v = 0
   elseif b:sub(1, 2) == '0b' then v = tonumber(b:sub(3), 2)
   elseif b:sub(1, 2) == '0x' then v = tonumber(b:sub(3), 16)
   elseif b:sub(1, 1) == '0' then v = tonumber(b, 8)
   elseif b:find(':') then
      v = 0
      for p in (b .. ':'):gmatch('([^:]*):') do v = v * 60 + tonumber(p) end
   else v = tonumber(b) end
   return sign == '-' and -v or v
end

local function toFloat(s)
   local sign, b = stripSign(s:gsub('_', ''):lower())
   local v
   if b == '.inf' then v = math.huge
   elseif b == '.nan' then v = 0 / 0
   elseif b:find(':') then
      local head, frac = b:match('^(.-)(%.[0-9]*)$')
      v = 0
      for p in (head .. ':'):gmatch('([^:]*):') do v = v * 60 + tonumber(p) end
      v = v + (tonumber('0' .. frac) or 0)
   else v = tonumber(b) end
   return sign == '-' and -v or v
end

--- The value PyYAML's safe loader gives a plain scalar; nil for null.
function M.resolvePlain(s)
   if NULLS[s] then return nil end
   local bv = BOOLS[s]
   if bv ~= nil then return bv end
   if isInt(s) then return toInt(s) end
   if isFloat(s) then return toFloat(s) end
   return s
end
local resolvePlain = M.resolvePlain

local TAGS = {
   ['tag:yaml.org,2002:str'] = function(s) return s end,
   ['tag:yaml.org,2002:int'] = function(s) return isInt(s) and toInt(s) or tonumber(s) end,
   ['tag:yaml.org,2002:float'] = function(s) return isFloat(s) and toFloat(s) or tonumber(s) end,
   ['tag:yaml.org,2002:bool'] = function(s) return BOOLS[s] end,
   ['tag:yaml.org,2002:null'] = function() return nil end,
}

---------------------------------------------------------------------------
-- building Lua tables from the event list
---------------------------------------------------------------------------

-- the most nodes a document may stand for once its aliases are expanded
-- (a few kB of nested aliases can otherwise stand for billions: writing such
-- a tree back, or walking it, would never end)
M.maxNodes = 1000000

local function build(doc, source)
   local n = C.sl_yaml_count(doc)
   local anchors, sizes, open = {}, {}, {}
   local i, total = 0, 0
   local function str(p) return p ~= nil and ffi.string(p) or nil end
   local function perr(msg, line)
      error('params: ' .. msg .. ' in ' .. source .. ' at line ' .. line, 0)
   end
   local node
   local function scalar(k)
      local v = ffi.string(C.sl_yaml_value(doc, k))
      local tag = str(C.sl_yaml_tag(doc, k))
      if tag and tag ~= '!' then
         local conv = TAGS[tag]
         if not conv then perr("unsupported tag '" .. tag .. "'", C.sl_yaml_line(doc, k)) end
         return conv(v)
      end
      if C.sl_yaml_style(doc, k) == 1 then return resolvePlain(v) end
      return v
   end
   -- counts the nodes an alias stands for, against M.maxNodes
   local function grow(by, line)
      total = total + by
      if total > M.maxNodes then
         perr('the document stands for more than ' .. M.maxNodes .. ' nodes once its aliases are expanded', line)
      end
   end
   node = function()
      local k = i
      i = i + 1
      if k >= n then perr('unexpected end of document', 0) end
      local t = C.sl_yaml_type(doc, k)
      local anchor = str(C.sl_yaml_anchor(doc, k))
      local before = total
      local value
      if t == 5 then
         value = scalar(k)
         grow(1, C.sl_yaml_line(doc, k))
      elseif t == 6 then
         local name = anchor
         if anchors[name] == nil then perr("unknown alias '*" .. name .. "'", C.sl_yaml_line(doc, k)) end
         if open[name] then perr("alias '*" .. name .. "' refers to a node that contains it", C.sl_yaml_line(doc, k)) end
         grow(sizes[name], C.sl_yaml_line(doc, k))
         return anchors[name]
      elseif t == 1 then
         value = {}
         if anchor then anchors[anchor], open[anchor] = value, true end
         local merges = {}
         while C.sl_yaml_type(doc, i) ~= 2 do
            local kt = C.sl_yaml_type(doc, i)
            if kt ~= 5 then perr('only scalar mapping keys are supported', C.sl_yaml_line(doc, i)) end
            local isMerge = ffi.string(C.sl_yaml_value(doc, i)) == '<<' and C.sl_yaml_style(doc, i) == 1
            local key
            if isMerge then i = i + 1 else key = node() end
            if key ~= key then perr('a mapping key is NaN', C.sl_yaml_line(doc, i - 1)) end
            local v = node()
            if isMerge then merges[#merges + 1] = v
            elseif key ~= nil then value[key] = v end
         end
         i = i + 1
         for _, m in ipairs(merges) do
            local list = (type(m) == 'table' and m[1] ~= nil) and m or {m}
            for _, src in ipairs(list) do
               if type(src) ~= 'table' then perr('merge key needs a mapping', 0) end
               for mk, mv in pairs(src) do if value[mk] == nil then value[mk] = mv end end
            end
         end
      elseif t == 3 then
         value = {}
         if anchor then anchors[anchor], open[anchor] = value, true end
         local idx = 0
         while C.sl_yaml_type(doc, i) ~= 4 do
            idx = idx + 1
            value[idx] = node()
         end
         i = i + 1
      else
         perr('unexpected YAML event', C.sl_yaml_line(doc, k))
      end
      if anchor then anchors[anchor], open[anchor], sizes[anchor] = value, nil, total - before end
      return value
   end
   if n == 0 then return {} end
   local root = node()
   if type(root) ~= 'table' then root = {root} end
   return root
end

local function loadFile(path)
   local doc = C.sl_yaml_parse_file(path)
   if doc == nil then error(L.lastError(), 0) end
   doc = ffi.gc(doc, C.sl_yaml_free)
   return build(doc, "'" .. path .. "'")
end

function M.parseString(text)
   if type(text) ~= 'string' then L.raise('params.parseString: expected YAML text (a string), got ' .. type(text)) end
   local doc = C.sl_yaml_parse_string(text, #text)
   if doc == nil then error(L.lastError(), 0) end
   doc = ffi.gc(doc, C.sl_yaml_free)
   return build(doc, 'string')
end

---------------------------------------------------------------------------
-- writing YAML (PyYAML's block style, keys sorted)
---------------------------------------------------------------------------

local function keyOrder(a, b)
   local ta, tb = type(a), type(b)
   local ra = ta == 'boolean' and 0 or (ta == 'number' and 1 or 2)
   local rb = tb == 'boolean' and 0 or (tb == 'number' and 1 or 2)
   if ra ~= rb then return ra < rb end
   if ta == 'boolean' then return (not a) and b end
   return a < b
end

local function formatNumber(x)
   if x ~= x then return '.nan' end
   if x == math.huge then return '.inf' end
   if x == -math.huge then return '-.inf' end
   if x % 1 == 0 and math.abs(x) < 2 ^ 53 then return string.format('%.0f', x) end
   local s
   for prec = 15, 17 do
      s = string.format('%.' .. prec .. 'g', x)
      if tonumber(s) == x then break end
   end
   -- YAML 1.1 floats need a dot in the mantissa and a signed exponent
   local mant, exp = s:match('^(.-)[eE](.*)$')
   if mant then
      if not mant:find('%.') then mant = mant .. '.0' end
      if not exp:match('^[-+]') then exp = '+' .. exp end
      s = mant .. 'e' .. exp
   elseif not s:find('%.') then
      s = s .. '.0'
   end
   return s
end

-- YAML text is Unicode: a string that is not UTF-8 has no YAML spelling
local function isUtf8(s)
   local i, n = 1, #s
   while i <= n do
      local c = s:byte(i)
      local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
         or (c >= 0xF0 and c <= 0xF4) and 4 or nil
      if not len or i + len - 1 > n then return false end
      for k = i + 1, i + len - 1 do
         local b = s:byte(k)
         if b < 0x80 or b > 0xBF then return false end
      end
      i = i + len
   end
   return true
end

-- escapes of YAML's double-quoted style for what a quoted scalar cannot hold
-- as it is: control bytes, DEL, and the line breaks U+0085, U+2028, U+2029
local ESCAPES = {['\\'] = '\\\\', ['"'] = '\\"', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
   ['\194\133'] = '\\N', ['\226\128\168'] = '\\L', ['\226\128\169'] = '\\P'}

local function formatString(s)
   if not isUtf8(s) then
      error(string.format('params: cannot write the string %q: it is not UTF-8 text', s:sub(1, 40)), 0)
   end
   local special = s:find('[%c\127]') or s:find('\194\133', 1, true) or s:find('\226\128[\168\169]')
   if special then
      local body = s:gsub('[%c\127\\"]', function(c) return ESCAPES[c] or string.format('\\x%02X', c:byte()) end)
      body = body:gsub('\194\133', ESCAPES):gsub('\226\128[\168\169]', ESCAPES)
      return '"' .. body .. '"'
   end
   local plainOk = s ~= '' and s ~= '<<' and not s:match('^[%s]') and not s:match('[%s]$')
      and not s:match('^[-?:,%[%]{}#&*!|>\'"%%@`]') and not s:find(': ') and not s:find(' #')
      and not s:match(':$') and resolvePlain(s) == s
   if plainOk then return s end
   return "'" .. s:gsub("'", "''") .. "'"
end

local function scalarText(v)
   local t = type(v)
   if t == 'number' then return formatNumber(v) end
   if t == 'boolean' then return v and 'true' or 'false' end
   if t == 'string' then return formatString(v) end
   error('params: cannot write a value of type ' .. t, 0)
end

local function isArray(t)
   local n = #t
   for k in pairs(t) do
      if type(k) ~= 'number' or k < 1 or k > n or k % 1 ~= 0 then return false end
   end
   return n > 0
end

local function emit(v, indent, out, open)
   -- open: the tables being written around this one (a cycle never ends)
   if open[v] then error('params: cannot write a table that contains itself', 0) end
   open[v] = true
   local pad = string.rep(' ', indent)
   if isArray(v) then
      for _, item in ipairs(v) do
         if type(item) == 'table' and next(item) ~= nil then
            local sub = {}
            emit(item, indent + 2, sub, open)
            sub[1] = pad .. '- ' .. sub[1]:sub(indent + 3)
            for _, l in ipairs(sub) do out[#out + 1] = l end
         elseif type(item) == 'table' then
            out[#out + 1] = pad .. '- {}'
         else
            out[#out + 1] = pad .. '- ' .. scalarText(item)
         end
      end
      open[v] = nil
      return
   end
   local keys = {}
   for k in pairs(v) do keys[#keys + 1] = k end
   table.sort(keys, keyOrder)
   for _, k in ipairs(keys) do
      local val = v[k]
      local kt = scalarText(k)
      if #kt > 1024 then -- YAML's limit for an implicit key
         error('params: cannot write a key of ' .. #kt .. ' characters (YAML allows 1024): ' .. kt:sub(1, 40) .. '...', 0)
      end
      if type(val) == 'table' then
         if next(val) == nil then
            out[#out + 1] = pad .. kt .. ': {}'
         elseif isArray(val) then
            out[#out + 1] = pad .. kt .. ':'
            emit(val, indent, out, open)
         else
            out[#out + 1] = pad .. kt .. ':'
            emit(val, indent + 2, out, open)
         end
      else
         out[#out + 1] = pad .. kt .. ': ' .. scalarText(val)
      end
   end
   open[v] = nil
end

--- YAML text of a table (block style, keys sorted).
function M.dump(tbl)
   if type(tbl) ~= 'table' then L.raise('params.dump: expected a table, got ' .. type(tbl)) end
   local out = {}
   emit(tbl, 0, out, {})
   return table.concat(out, '\n') .. '\n'
end

---------------------------------------------------------------------------
-- the params object
---------------------------------------------------------------------------

local function new(tbl)
   return setmetatable(tbl, Params)
end

--- Write the tree as YAML to path (through path.tmp, renamed at the end).
function Params:save(path)
   if type(path) ~= 'string' then L.raise('params:save: expected a file path, got ' .. type(path)) end
   local plain = {}
   for k, v in pairs(self) do plain[k] = v end
   local ok, text = pcall(M.dump, plain)
   if not ok then L.raise('params:save: ' .. tostring(text):gsub('^params: ', '')) end
   utils.writeFiles({{path, text}}, 'params:save')
   return self
end

local function repr(v)
   if type(v) == 'string' then return "'" .. v .. "'" end
   if type(v) == 'boolean' then return v and 'True' or 'False' end
   return tostring(v)
end

local function printTree(v, indent, lines)
   local pad = string.rep(' ', indent)
   if isArray(v) then
      for _, item in ipairs(v) do
         if type(item) == 'table' then
            local parts = {}
            for _, k in ipairs((function() local ks = {} for k in pairs(item) do ks[#ks + 1] = k end table.sort(ks, keyOrder) return ks end)()) do
               parts[#parts + 1] = repr(k) .. ': ' .. repr(item[k])
            end
            lines[#lines + 1] = pad .. '- {' .. table.concat(parts, ', ') .. '}'
         else
            lines[#lines + 1] = pad .. '- ' .. repr(item)
         end
      end
      return
   end
   local keys = {}
   for k in pairs(v) do keys[#keys + 1] = k end
   table.sort(keys, keyOrder)
   for _, k in ipairs(keys) do
      local val = v[k]
      if type(val) == 'table' then
         lines[#lines + 1] = pad .. tostring(k) .. ' :'
         printTree(val, indent + 4, lines)
      else
         lines[#lines + 1] = string.format('%s%-10s : %s', pad, tostring(k), tostring(val))
      end
   end
end

--- Print the tree, or one top-level section, as the reference's printConfig;
-- returns the text (out: an alternative to print, e.g. to a log).
function Params:print(key, out)
   if out ~= nil and type(out) ~= 'function' then
      L.raise('params:print: expected out as a function such as print, got ' .. type(out))
   end
   local lines = {}
   if key ~= nil then
      local v = self[key]
      if v == nil then L.raise("params:print: no section '" .. L.valueStr(key) .. "'") end
      if type(v) == 'table' then
         lines[1] = tostring(key) .. ':'
         printTree(v, 4, lines)
      else
         lines[1] = string.format('%-10s : %s', tostring(key), tostring(v))
      end
   else
      local plain = {}
      for k, v in pairs(self) do plain[k] = v end
      printTree(plain, 0, lines)
   end
   local text = table.concat(lines, '\n')
   ;(out or print)(text)
   return text
end

--- Look up a nested key path ('training', 'error', 'type'); error naming
-- the path when absent.
function Params:require(...)
   local v, path = self, {}
   for i = 1, select('#', ...) do
      local k = select(i, ...)
      path[#path + 1] = type(k) == 'string' and k or L.valueStr(k)
      if type(v) ~= 'table' or v[k] == nil then
         L.raise("params:require: missing required key '" .. table.concat(path, '.') .. "'")
      end
      v = v[k]
   end
   return v
end

return setmetatable(M, {__call = function(_, pathOrTable, dict)
   if type(pathOrTable) == 'string' then return new(loadFile(pathOrTable)) end
   if type(pathOrTable) == 'table' then return new(pathOrTable) end
   if pathOrTable == nil and type(dict) == 'table' then return new(dict) end
   L.raise('params: expected a YAML file path or a table, got ' .. type(pathOrTable))
end})
