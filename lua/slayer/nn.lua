--[[
slayer.nn -- classes, the Module base class, Sequential, saving and loading.

    local Net = snn.class('Net', snn.Module)
    function Net:__init(...) snn.Module.__init(self); self.fc = ... end
    function Net:forward(x) return ... end
    local net = Net(...)            -- constructs and runs __init
    local y = net(x)                -- same as net:forward(x)

Parameters are the tensors reachable from a module's fields (recursively
through sub-modules and plain Lua lists) that require a gradient; every
other reachable tensor is a buffer (kernels, running statistics).  Both are
named by their field path ("fc1.weight", "modules.2.weight") and visited in
a stable order: integer keys ascending, then string keys sorted.  Fields
whose name starts with an underscore are private and not visited.
]]
local ffi = require 'ffi'
local L = require 'slayer.ffi'
local T = require 'slayer.tensor'
local A = require 'slayer.autograd'

local C = L.C
local isTensor = T.isTensor

local M = {}

local metamethods = {'__call', '__tostring', '__add', '__sub', '__mul', '__div', '__unm', '__len',
   '__eq', '__lt', '__le', '__concat'}

--- Create a class. Calling the class constructs an instance and runs its
-- __init(...) (inherited from the parent when not defined).
function M.class(name, parent)
   if type(name) ~= 'string' then L.raise('class: expected a class name string, got ' .. type(name)) end
   if parent ~= nil and type(parent) ~= 'table' then
      L.raise('class: expected a parent class table, got ' .. type(parent))
   end
   local cls = {__typename = name}
   cls.__index = cls
   -- a parent's __lookup(obj, key) answers the keys no class in the chain holds
   if parent and parent.__lookup then M.setLookup(cls, parent.__lookup) end
   if parent then
      for _, mm in ipairs(metamethods) do
         if rawget(parent, mm) then cls[mm] = parent[mm] end
      end
   end
   cls.__parent = parent
   setmetatable(cls, {
      __index = parent,
      __call = function(c, ...)
         local obj = setmetatable({}, c)
         local init = c.__init
         if init then init(obj, ...) end
         return obj
      end,
      __tostring = function() return 'class ' .. name end,
   })
   return cls
end

--- Give cls's instances (and those of classes derived from it later) a
-- fallback: lookup(obj, key) answers a key that neither the instance nor
-- any class in its chain holds (a field computed on first use).
function M.setLookup(cls, lookup)
   cls.__lookup = lookup
   cls.__index = function(obj, k)
      local v = cls[k]
      if v == nil then return lookup(obj, k) end
      return v
   end
end

--- True when obj is an instance of cls or of a class derived from it.
function M.isInstance(obj, cls)
   if type(obj) ~= 'table' then return false end
   local mt = getmetatable(obj)
   while mt do
      if mt == cls then return true end
      mt = rawget(mt, '__parent')
   end
   return false
end

local Module = M.class('Module')
M.Module = Module

function Module:__init()
   self.training = true
end

function Module:forward()
   L.raise(tostring(self.__typename) .. ':forward is not implemented')
end

-- a weight-normalised module's weight, computed at the outermost call, is
-- left as a plain tensor (a buffer) once that call returns or raises
local function afterCall(self, wn, ok, ...)
   wn.depth = wn.depth - 1
   if wn.depth == 0 then self[wn.name] = self[wn.name]:detach() end
   if not ok then error((...), 0) end
   return ...
end

function Module:__call(...)
   local wn = rawget(self, '_weightNorm')
   if wn then
      if wn.depth == 0 then self[wn.name] = wn.compute(self) end
      wn.depth = wn.depth + 1
      return afterCall(self, wn, pcall(self.forward, self, ...))
   end
   return self:forward(...)
end

local function isModule(x) return M.isInstance(x, Module) end
M.isModule = isModule

local function sortedKeys(tbl)
   local nums, strs = {}, {}
   for k, v in pairs(tbl) do
      if type(k) == 'number' then nums[#nums + 1] = k
      elseif type(k) == 'string' then
         if k:sub(1, 1) ~= '_' then strs[#strs + 1] = k end
      elseif isTensor(v) or isModule(v) then
         -- a name is needed (checkpoints, optimizers' order): refuse rather than skip it
         L.raise(('Module: a %s under a %s key (%s); use a string or number key'):format(
            isTensor(v) and 'tensor' or 'module', type(k), tostring(k)))
      end
   end
   table.sort(nums)
   table.sort(strs)
   for _, k in ipairs(strs) do nums[#nums + 1] = k end
   return nums
end

-- print(net) in the REPL: the class name and, one per line, the modules it
-- holds (directly or in plain tables: blocks.1), each as it prints itself
function Module:__tostring()
   local name = self.__typename or 'Module'
   local lines, seen = {}, {[self] = true}
   local function rec(obj, prefix)
      for _, k in ipairs(sortedKeys(obj)) do
         local v = obj[k]
         local key = prefix .. tostring(k)
         if isModule(v) and not seen[v] then
            seen[v] = true
            lines[#lines + 1] = '  (' .. key .. '): ' .. tostring(v):gsub('\n', '\n  ')
         elseif type(v) == 'table' and getmetatable(v) == nil and not seen[v] then
            seen[v] = true
            rec(v, key .. '.')
         end
      end
   end
   rec(self, '')
   if #lines == 0 then return name end
   return name .. ' {\n' .. table.concat(lines, '\n') .. '\n}'
end

-- visit(name, tensor) for every reachable tensor, once each
local function walk(root, visit)
   local seenTables, seenTensors = {}, {}
   local function rec(obj, prefix)
      if seenTables[obj] then return end
      seenTables[obj] = true
      for _, k in ipairs(sortedKeys(obj)) do
         local v = obj[k]
         local name = prefix == '' and tostring(k) or (prefix .. '.' .. tostring(k))
         if isTensor(v) then
            if not seenTensors[v] then
               seenTensors[v] = true
               visit(name, v)
            end
         elseif type(v) == 'table' and (isModule(v) or getmetatable(v) == nil) then
            rec(v, name)
         end
      end
   end
   rec(root, '')
end

--- Parameters: list of tensors, and the matching list of names.
function Module:parameters()
   local params, names = {}, {}
   walk(self, function(name, t)
      if t:requiresGrad() and t:isLeaf() then
         params[#params + 1] = t
         names[#names + 1] = name
      end
   end)
   return params, names
end

--- All named tensors (parameters and buffers), in the stable order.
function Module:namedTensors()
   local list = {}
   walk(self, function(name, t) list[#list + 1] = {name = name, tensor = t} end)
   return list
end

function Module:zeroGrad()
   for _, p in ipairs(self:parameters()) do p:zeroGrad() end
   return self
end

-- apply fn to self and every sub-module
local function eachModule(root, fn)
   local seen = {}
   local function rec(obj)
      if seen[obj] then return end
      seen[obj] = true
      if isModule(obj) then fn(obj) end
      for _, k in ipairs(sortedKeys(obj)) do
         local v = obj[k]
         if type(v) == 'table' and not isTensor(v) and (isModule(v) or getmetatable(v) == nil) then rec(v) end
      end
   end
   rec(root)
end
M.eachModule = eachModule

function Module:train(flag)
   local mode = flag ~= false
   eachModule(self, function(m) m.training = mode end)
   return self
end

function Module:evaluate()
   return self:train(false)
end

--- Move every parameter and buffer to device, in place (tensors keep their
-- identity, so an optimizer built earlier keeps working).
function Module:to(device)
   if device ~= 'cpu' and device ~= 'cuda' then
      L.raise("to: expected device 'cpu' or 'cuda', got " .. L.valueStr(device))
   end
   walk(self, function(_, t) t:moveTo_(device) end)
   eachModule(self, function(m) m.device = device end)
   return self
end

function Module:cuda() return self:to('cuda') end
function Module:cpu() return self:to('cpu') end

---------------------------------------------------------------------------
-- named-tensor files
---------------------------------------------------------------------------

-- raise the C library's message under fname, without repeating the C
-- function's own prefix (cname)
local function cError(fname, cname)
   local msg = L.lastError()
   if msg:sub(1, #cname + 2) == cname .. ': ' then msg = msg:sub(#cname + 3) end
   L.raise(fname .. ': ' .. msg)
end

local function saveNamed(fname, path, names, tensors)
   L.checkPath(fname, path)
   if path:find('\0', 1, true) then L.raise(fname .. ': the path ' .. string.format('%q', path) .. ' contains a NUL byte') end
   local n = #names
   -- the file stores C strings and its reader rejects repeated names: check
   -- both here, before anything is written
   local seen = {}
   for i = 1, n do
      local name = names[i]
      if name:find('\0', 1, true) then
         L.raise(fname .. ': the tensor name ' .. string.format('%q', name) .. ' contains a NUL byte')
      end
      if seen[name] then
         L.raise(fname .. ': tensors ' .. seen[name] .. ' and ' .. i .. ' would both be saved as '
            .. string.format('%q', name) .. ' (two fields give the same name path); rename one')
      end
      seen[name] = i
   end
   local cnames = ffi.new('const char *[?]', math.max(n, 1))
   local ctens = ffi.new('const sl_tensor *[?]', math.max(n, 1))
   local keep = {}
   for i = 1, n do
      local t = tensors[i]
      if t.device ~= 'cpu' or not t:isContiguous() then t = t:detach():cpu():contiguous() end
      keep[i] = t
      cnames[i - 1] = names[i]
      ctens[i - 1] = t._c
   end
   if C.sl_save_tensors(path, n, cnames, ctens) ~= 0 then cError(fname, 'save') end
end

-- read a file into {names = {...}, byName = {name = {shape=, ptr=}}, handle}
local function readNamed(fname, path)
   if type(path) ~= 'string' then L.raise(fname .. ': expected a file path, got ' .. type(path)) end
   if path:find('\0', 1, true) then L.raise(fname .. ': the path ' .. string.format('%q', path) .. ' contains a NUL byte') end
   local f = C.sl_load_tensors(path)
   if f == nil then cError(fname, 'load') end
   f = ffi.gc(f, C.sl_tensor_file_close)
   local entries, byName = {}, {}
   for i = 0, C.sl_tensor_file_count(f) - 1 do
      local name = ffi.string(C.sl_tensor_file_name(f, i))
      local nd = C.sl_tensor_file_ndim(f, i)
      local sp = C.sl_tensor_file_shape(f, i)
      local shape = {}
      for d = 1, nd do shape[d] = sp[d - 1] end
      local e = {name = name, shape = shape, ptr = C.sl_tensor_file_data(f, i)}
      if byName[name] then
         L.raise(fname .. ': ' .. path .. ' holds two entries named ' .. string.format('%q', name)
            .. ' (entries ' .. byName[name].index .. ' and ' .. (i + 1) .. ')')
      end
      e.index = i + 1
      entries[#entries + 1] = e
      byName[name] = e
   end
   return {entries = entries, byName = byName, handle = f}
end

local function shapeText(s)
   return '[' .. table.concat(s, ', ') .. ']'
end

--- Save a table {name = tensor, ...} (names sorted) to path.
function M.save(path, tbl)
   if type(tbl) ~= 'table' then L.raise('save: expected a table of named tensors, got ' .. type(tbl)) end
   local names, tensors = {}, {}
   for k in pairs(tbl) do
      if type(k) ~= 'string' then L.raise('save: table keys must be strings, got ' .. type(k)) end
      if not isTensor(tbl[k]) then L.raise('save: entry ' .. k .. ' is not a tensor') end
      names[#names + 1] = k
   end
   table.sort(names)
   for i, k in ipairs(names) do tensors[i] = tbl[k] end
   saveNamed('save', path, names, tensors)
end

--- Load a file written by snn.save or Module:save into {name = tensor}.
function M.load(path)
   local file = readNamed('load', path)
   local out = {}
   for _, e in ipairs(file.entries) do
      out[e.name] = T.fromPointer(e.ptr, e.shape)
   end
   return out
end

function Module:save(path)
   local names, tensors = {}, {}
   for i, e in ipairs(self:namedTensors()) do
      names[i] = e.name
      tensors[i] = e.tensor
   end
   saveNamed('save', path, names, tensors)
   return self
end

--- Load parameters and buffers saved by Module:save.  Every tensor of the
-- module must be in the file with the same shape and the file must hold
-- nothing else; otherwise nothing is changed and an error names the problem.
function Module:load(path)
   local file = readNamed('load', path)
   local list = self:namedTensors()
   local seen = {}
   for _, e in ipairs(list) do
      local f = file.byName[e.name]
      if not f then L.raise('load: ' .. path .. ' has no tensor named ' .. e.name) end
      local shape = e.tensor:shape()
      local same = #shape == #f.shape
      for d = 1, #shape do if shape[d] ~= f.shape[d] then same = false end end
      if not same then
         L.raise('load: ' .. e.name .. ' has shape ' .. shapeText(f.shape) .. ' in ' .. path .. ', the module expects '
            .. shapeText(shape))
      end
      seen[e.name] = true
   end
   for _, f in ipairs(file.entries) do
      if not seen[f.name] then L.raise('load: ' .. path .. ' holds ' .. f.name .. ', which the module does not have') end
   end
   for _, e in ipairs(list) do
      local src = T.fromPointer(file.byName[e.name].ptr, file.byName[e.name].shape)
      e.tensor:copy(src)
   end
   return self
end

---------------------------------------------------------------------------
-- Sequential
---------------------------------------------------------------------------

local Sequential = M.class('Sequential', Module)
M.Sequential = Sequential

function Sequential:__init(...)
   Module.__init(self)
   self.modules = {}
   for i = 1, select('#', ...) do self:add((select(i, ...))) end
end

function Sequential:add(m)
   if type(m) ~= 'function' and not (type(m) == 'table' and getmetatable(m) and getmetatable(m).__call) then
      L.raise('Sequential:add: expected a module or a function, got ' .. type(m))
   end
   self.modules[#self.modules + 1] = m
   return self
end

function Sequential:forward(x)
   for _, m in ipairs(self.modules) do x = m(x) end
   return x
end

function Sequential:__tostring()
   local lines = {'Sequential {'}
   for i, m in ipairs(self.modules) do
      local s = type(m) == 'function' and 'function' or tostring(m)
      lines[#lines + 1] = string.format('  (%d): %s', i, (s:gsub('\n', '\n  ')))
   end
   lines[#lines + 1] = '}'
   return table.concat(lines, '\n')
end

---------------------------------------------------------------------------
-- weight normalisation
---------------------------------------------------------------------------

-- ||v|| over every dimension but dim (a tensor of v's rank, size 1 except
-- along dim), or over all of v (shape {1}) for dim 'all'
local function normExceptDim(v, dim)
   if dim == 'all' then return v:square():sum():sqrt() end
   local x = dim == 1 and v or v:transpose(1, dim):contiguous()
   local shape = {}
   for i = 1, v:dim() do shape[i] = 1 end
   shape[dim] = v:size(dim)
   return x:reshape({x:size(1), x:numel() / x:size(1)}):square():sum(2):sqrt():reshape(shape)
end

--- weightNorm(module[, name][, dim]): weight normalisation (Salimans and
-- Kingma 2016) as torch.nn.utils.weight_norm, which the reference's auto
-- blocks use: module[name] (default 'weight') is replaced by two parameters,
-- name_g (its norm, one value per index of dim: default 1, the output
-- channels; 'all' for one norm of the whole tensor) and name_v (its
-- direction, at first the weight itself), and every call of the module
-- computes
--     module[name] = v * (g / ||v||)      (the norm over every dim but dim)
-- before its forward, so gradients reach g and v.  Between calls
-- module[name] holds the last weight computed, as a plain tensor.  Apply it
-- before building the optimizer over the module's parameters.  As with
-- torch's hook, calling module:forward(x) directly skips the computation
-- for modules of your own; the synapse layers of snn.layer and snn.loihi
-- compute it in their forward as well.
function M.weightNorm(m, name, dim)
   local fname = 'weightNorm'
   if not isModule(m) then L.raise(fname .. ': expected a module, got ' .. type(m)) end
   name = name == nil and 'weight' or name
   if type(name) ~= 'string' then L.raise(fname .. ': expected a field name, got ' .. type(name)) end
   if rawget(m, '_weightNorm') then L.raise(fname .. ': the module is already weight-normalised') end
   local w = m[name]
   if not isTensor(w) or not w:requiresGrad() or not w:isLeaf() then
      L.raise(fname .. ": the module has no parameter '" .. name .. "'")
   end
   dim = dim == nil and 1 or dim
   if dim ~= 'all' and not L.isWhole(dim, 1, w:dim()) then
      L.raise(fname .. ': expected dim in 1..' .. w:dim() .. " or 'all', got " .. L.valueStr(dim))
   end
   local gname, vname = name .. '_g', name .. '_v'
   if m[gname] ~= nil or m[vname] ~= nil then
      L.raise(fname .. ": the module already has a field '" .. (m[gname] ~= nil and gname or vname) .. "'")
   end
   local v = w:detach():clone()
   m[gname] = A.noGrad(function() return normExceptDim(v, dim) end):requiresGrad(true)
   m[vname] = v:requiresGrad(true)
   m[name] = w:detach()
   m._weightNorm = {name = name, dim = dim, depth = 0, compute = function(self)
      local vv = self[vname]
      return vv * (self[gname] / normExceptDim(vv, dim))
   end}
   return m
end

--- Bring a weight-normalised module's weight up to date with its g and v
-- (after an optimizer step, before reading module.weight outside a call).
function M.updateWeightNorm(m)
   if not isModule(m) then L.raise('updateWeightNorm: expected a module, got ' .. type(m)) end
   local wn = rawget(m, '_weightNorm')
   if wn then m[wn.name] = A.noGrad(function() return wn.compute(m) end) end
   return m
end

--- removeWeightNorm(module): the weight v * (g / ||v||) becomes a plain
-- parameter again, and name_g and name_v are removed.
function M.removeWeightNorm(m)
   if not isModule(m) then L.raise('removeWeightNorm: expected a module, got ' .. type(m)) end
   local wn = rawget(m, '_weightNorm')
   if not wn then L.raise('removeWeightNorm: the module is not weight-normalised') end
   local w = A.noGrad(function() return wn.compute(m) end)
   m[wn.name .. '_g'], m[wn.name .. '_v'], m._weightNorm = nil, nil, nil
   m[wn.name] = w:detach():requiresGrad(true)
   return m
end

return M
