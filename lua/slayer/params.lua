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
keys work.  Sequences become Lua arrays (1-based).  What Lua tables do not
keep is remembered beside them: the file's key order (print follows it, as
the reference's printConfig follows its dict) and which numbers were floats
(print writes 1.0, and save dumps 1.0, as Python and PyYAML do).
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

-- What a Lua table loses of the Python objects PyYAML builds, kept beside
-- the tables read from a file (weak keys): the keys of each mapping in file
-- order (a Python dict's order, which printConfig follows) and the values
-- that were floats (Python prints and dumps 1.0, not 1).  A float is
-- remembered with its value, so a number assigned later is an integer again.
local fileOrder = setmetatable({}, {__mode = 'k'})
local floatValues = setmetatable({}, {__mode = 'k'})
M._fileOrder, M._floatValues = fileOrder, floatValues

local function markFloat(tbl, key, v)
   local f = floatValues[tbl]
   if not f then f = {} floatValues[tbl] = f end
   f[key] = v
end

--- Whether tbl[key] holds the float the file gave it.
local function isFloatValue(tbl, key)
   local f = tbl ~= nil and floatValues[tbl]
   return f and type(rawget(tbl, key)) == 'number' and rawequal(f[key], rawget(tbl, key)) or false
end

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
   -- the value, and whether Python would hold it as a float
   local function scalar(k)
      local v = ffi.string(C.sl_yaml_value(doc, k))
      local tag = str(C.sl_yaml_tag(doc, k))
      if tag and tag ~= '!' then
         local conv = TAGS[tag]
         if not conv then perr("unsupported tag '" .. tag .. "'", C.sl_yaml_line(doc, k)) end
         return conv(v), tag == 'tag:yaml.org,2002:float'
      end
      if C.sl_yaml_style(doc, k) == 1 then
         local r = resolvePlain(v)
         return r, type(r) == 'number' and not isInt(v)
      end
      return v, false
   end
   local isFloatNode, floatAnchors = false, {}
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
      isFloatNode = false
      if t == 5 then
         local fl
         value, fl = scalar(k)
         grow(1, C.sl_yaml_line(doc, k))
         if anchor then floatAnchors[anchor] = fl end
         isFloatNode = fl
      elseif t == 6 then
         local name = anchor
         if anchors[name] == nil then perr("unknown alias '*" .. name .. "'", C.sl_yaml_line(doc, k)) end
         if open[name] then perr("alias '*" .. name .. "' refers to a node that contains it", C.sl_yaml_line(doc, k)) end
         grow(sizes[name], C.sl_yaml_line(doc, k))
         isFloatNode = floatAnchors[name] or false
         return anchors[name]
      elseif t == 1 then
         value = {}
         if anchor then anchors[anchor], open[anchor] = value, true end
         local merges, order = {}, {}
         while C.sl_yaml_type(doc, i) ~= 2 do
            local kt = C.sl_yaml_type(doc, i)
            if kt ~= 5 then perr('only scalar mapping keys are supported', C.sl_yaml_line(doc, i)) end
            local isMerge = ffi.string(C.sl_yaml_value(doc, i)) == '<<' and C.sl_yaml_style(doc, i) == 1
            local key
            if isMerge then i = i + 1 else key = node() end
            if key ~= key then perr('a mapping key is NaN', C.sl_yaml_line(doc, i - 1)) end
            local v = node()
            if isMerge then merges[#merges + 1] = v
            elseif key ~= nil then
               if value[key] == nil then order[#order + 1] = key end
               value[key] = v
               if isFloatNode then markFloat(value, key, v) end
            end
         end
         i = i + 1
         -- PyYAML puts merged keys first (later sources before earlier ones);
         -- explicit keys and earlier sources win
         local merged = {}
         for _, m in ipairs(merges) do
            local list = (type(m) == 'table' and m[1] ~= nil) and m or {m}
            for _, src in ipairs(list) do
               if type(src) ~= 'table' then perr('merge key needs a mapping', 0) end
               for mk, mv in pairs(src) do
                  if value[mk] == nil then
                     value[mk] = mv
                     if isFloatValue(src, mk) then markFloat(value, mk, mv) end
                  end
               end
               table.insert(merged, 1, src)
            end
         end
         if #merged > 0 then
            local seen, all = {}, {}
            for _, src in ipairs(merged) do
               for _, mk in ipairs(fileOrder[src] or {}) do
                  if not seen[mk] then seen[mk], all[#all + 1] = true, mk end
               end
            end
            for _, mk in ipairs(order) do
               if not seen[mk] then seen[mk], all[#all + 1] = true, mk end
            end
            order = all
         end
         fileOrder[value] = order
      elseif t == 3 then
         value = {}
         if anchor then anchors[anchor], open[anchor] = value, true end
         local idx = 0
         while C.sl_yaml_type(doc, i) ~= 4 do
            idx = idx + 1
            value[idx] = node()
            if isFloatNode then markFloat(value, idx, value[idx]) end
         end
         i = i + 1
      else
         perr('unexpected YAML event', C.sl_yaml_line(doc, k))
      end
      if anchor then anchors[anchor], open[anchor], sizes[anchor] = value, nil, total - before end
      isFloatNode = t == 5 and isFloatNode
      return value
   end
   if n == 0 then return {}, 'empty' end
   local kind = ({[1] = 'mapping', [3] = 'list', [5] = 'single value'})[C.sl_yaml_type(doc, 0)] or 'alias'
   local root = node()
   if type(root) ~= 'table' then root = {root} end
   return root, kind
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
   return (build(doc, 'string'))
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

--- Python's repr of a float: the shortest digits that read back, in fixed
-- notation for exponents -4 .. 15 (always with a decimal part), else as
-- d.ddde+XX.
local function pyFloatRepr(x)
   if x ~= x then return 'nan' end
   if x == math.huge then return 'inf' end
   if x == -math.huge then return '-inf' end
   if x == 0 then return 1 / x < 0 and '-0.0' or '0.0' end
   local s
   for prec = 0, 16 do
      s = string.format('%.' .. prec .. 'e', x)
      if tonumber(s) == x then break end
   end
   local sign, d1, rest, e = s:match('^(%-?)(%d)%.?(%d*)e([-+]%d+)$')
   local digits = (d1 .. rest):gsub('0+$', '')
   if digits == '' then digits = '0' end
   local exp = tonumber(e)
   if exp < -4 or exp > 15 then
      local m = digits:sub(1, 1) .. (#digits > 1 and '.' .. digits:sub(2) or '')
      return string.format('%s%se%s%02d', sign, m, exp < 0 and '-' or '+', math.abs(exp))
   end
   if exp < 0 then return sign .. '0.' .. string.rep('0', -exp - 1) .. digits end
   if #digits <= exp + 1 then return sign .. digits .. string.rep('0', exp + 1 - #digits) .. '.0' end
   return sign .. digits:sub(1, exp + 1) .. '.' .. digits:sub(exp + 2)
end
M._pyFloatRepr = pyFloatRepr

local function formatNumber(x, isFloat)
   if x ~= x then return '.nan' end
   if x == math.huge then return '.inf' end
   if x == -math.huge then return '-.inf' end
   if isFloat then
      -- PyYAML: repr(x).lower(), with '.0' put before an exponent that has no dot
      local r = pyFloatRepr(x)
      if not r:find('%.') then r = r:gsub('e', '.0e', 1) end
      return r
   end
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

local function scalarText(v, isFloat)
   local t = type(v)
   if t == 'number' then return formatNumber(v, isFloat) end
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
      for i, item in ipairs(v) do
         if type(item) == 'table' and next(item) ~= nil then
            local sub = {}
            emit(item, indent + 2, sub, open)
            sub[1] = pad .. '- ' .. sub[1]:sub(indent + 3)
            for _, l in ipairs(sub) do out[#out + 1] = l end
         elseif type(item) == 'table' then
            out[#out + 1] = pad .. '- {}'
         else
            out[#out + 1] = pad .. '- ' .. scalarText(item, isFloatValue(v, i))
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
         out[#out + 1] = pad .. kt .. ': ' .. scalarText(val, isFloatValue(v, k))
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
   floatValues[plain] = floatValues[self]
   local ok, text = pcall(M.dump, plain)
   if not ok then L.raise('params:save: ' .. tostring(text):gsub('^params: ', '')) end
   utils.writeFiles({{path, text}}, 'params:save')
   return self
end

-- the keys of a mapping in the order Python would hold them: file order
-- for what was read (keys added since follow, sorted), sorted otherwise
local function dictKeys(v)
   local keys, seen = {}, {}
   for _, k in ipairs(fileOrder[v] or {}) do
      if rawget(v, k) ~= nil and not seen[k] then seen[k], keys[#keys + 1] = true, k end
   end
   local rest = {}
   for k in pairs(v) do if not seen[k] then rest[#rest + 1] = k end end
   table.sort(rest, keyOrder)
   for _, k in ipairs(rest) do keys[#keys + 1] = k end
   return keys
end

-- Python's str() of a value (tbl[key] tells whether a number was a float);
-- quoted: its repr() (strings in quotes, as inside a dict or list)
local function pyStr(val, tbl, key, quoted)
   local t = type(val)
   if t == 'boolean' then return val and 'True' or 'False' end
   if t == 'number' then
      if not isFloatValue(tbl, key) and val % 1 == 0 and math.abs(val) < 2 ^ 63 then
         return string.format('%.0f', val)
      end
      return pyFloatRepr(val)
   end
   if t == 'string' then
      if not quoted then return val end
      local q = (val:find("'", 1, true) and not val:find('"', 1, true)) and '"' or "'"
      local body = val:gsub('\\', '\\\\'):gsub('\n', '\\n'):gsub('\r', '\\r'):gsub('\t', '\\t')
      if q == "'" then body = body:gsub("'", "\\'") end
      return q .. body .. q
   end
   if t == 'table' then
      local parts = {}
      if isArray(val) then
         for i, item in ipairs(val) do parts[i] = pyStr(item, val, i, true) end
         return '[' .. table.concat(parts, ', ') .. ']'
      end
      for _, k in ipairs(dictKeys(val)) do
         parts[#parts + 1] = pyStr(k, nil, nil, true) .. ': ' .. pyStr(val[k], val, k, true)
      end
      return '{' .. table.concat(parts, ', ') .. '}'
   end
   return tostring(val)
end
M._pyStr = pyStr

-- the reference's printConfig: a mapping's entries in its order, a nested
-- mapping or list as "<key> :" with 4 more spaces, a scalar as "<key padded
-- to 10> : <value>", a list item as "- <str(item)>", a lone scalar as itself
local function printTree(v, indent, lines, parent, pkey)
   local pad = string.rep(' ', indent)
   if type(v) ~= 'table' then
      lines[#lines + 1] = pad .. pyStr(v, parent, pkey)
      return
   end
   if isArray(v) then
      for i, item in ipairs(v) do lines[#lines + 1] = pad .. '- ' .. pyStr(item, v, i) end
      return
   end
   for _, k in ipairs(dictKeys(v)) do
      local val = v[k]
      if type(val) == 'table' then
         lines[#lines + 1] = pad .. pyStr(k) .. ' :'
         printTree(val, indent + 4, lines)
      else
         lines[#lines + 1] = string.format('%s%-10s : %s', pad, pyStr(k), pyStr(val, v, k))
      end
   end
end

--- Print the tree, or one top-level section, as the reference's printConfig
-- (Python's spelling of values: True, 1.0; a file's key order); returns the
-- text (out: an alternative to print, e.g. to a log).
function Params:print(key, out)
   if out ~= nil and type(out) ~= 'function' then
      L.raise('params:print: expected out as a function such as print, got ' .. type(out))
   end
   local lines = {}
   if key ~= nil then
      local v = rawget(self, key)
      if v == nil then L.raise("params:print: no section '" .. L.valueStr(key) .. "'") end
      lines[1] = pyStr(key) .. ':'
      printTree(v, 4, lines, self, key)
   else
      printTree(self, 0, lines)
   end
   local text = table.concat(lines, '\n')
   ;(out or print)(text)
   return text
end

-- print(params) in the REPL: the same text
function Params:__tostring()
   local lines = {}
   printTree(self, 0, lines)
   return #lines > 0 and table.concat(lines, '\n') or 'snn.params (empty)'
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
   if type(pathOrTable) == 'string' then
      local tree, kind = loadFile(pathOrTable)
      -- (an empty file, or one holding only a null, gives empty params)
      if kind ~= 'mapping' and next(tree) ~= nil then
         L.raise("params: '" .. pathOrTable .. "' holds a " .. kind
            .. ' at its top level; a network description is a mapping of sections (simulation:, neuron:, ...)')
      end
      return new(tree)
   end
   if type(pathOrTable) == 'table' then return new(pathOrTable) end
   if pathOrTable == nil and type(dict) == 'table' then return new(dict) end
   L.raise('params: expected a YAML file path or a table, got ' .. type(pathOrTable))
end})
