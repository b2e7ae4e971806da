--[[
slayer.tensor -- float32 N-D tensors over the C core, with autograd.

A tensor is a Lua table {_c = <sl_tensor* cdata>, device = 'cpu'|'cuda'}
plus, when it takes part in differentiation, `_rg` (requires a gradient),
`_node` (how it was computed) and `grad` (accumulated gradient of a leaf).
Storage lives in C; the cdata's finalizer releases it.  Because LuaJIT's
collector does not count those bytes, every allocation first asks the C
allocator whether live memory passed its threshold and, if so, runs a full
collection (see csrc/tensor.c).

Arguments are checked here, where a call enters; messages name the function
and the expected and received shapes.  Dimensions and indices are 1-based.
]]
local ffi = require 'ffi'
local L = require 'slayer.ffi'
local A = require 'slayer.autograd'

local C = L.C
local lastError = L.lastError

local T = {}
local Tensor = {}
Tensor.__index = Tensor
T.Tensor = Tensor

-- x[i] (Torch's indexing) is not supported: reading gave nil and writing
-- set a field of the Lua object, the tensor unchanged.  Both raise, naming
-- what to use.  (Read: only a key no method has reaches this; write: only
-- a key the object lacks.)
local function noIndexing(k, what)
   L.raise('tensor: ' .. what .. ' x[' .. tostring(k) .. '] is not supported: use x:select(1, i) or x:narrow(1, i, 1)'
      .. ' for a slice, x:totable() or x:item() for values, x:narrow(...):fill(v) or :copy(src) to write')
end
setmetatable(Tensor, {__index = function(_, k)
   if type(k) == 'number' then noIndexing(k, 'indexing') end
end})
function Tensor.__newindex(t, k, v)
   if type(k) ~= 'string' then noIndexing(k, 'assigning to') end
   rawset(t, k, v)
end

local DEVNAME = {[0] = 'cpu', [1] = 'cuda'}
local DEVNUM = {cpu = 0, cuda = 1}

local shapebuf = ffi.new('int32_t[8]')
local stridebuf = ffi.new('int64_t[8]')
local floatp = ffi.typeof('float *')
local floatAt = L.floatAt -- every read of tensor memory into Lua goes through it (NaNs)

local function isTensor(x) return getmetatable(x) == Tensor end
T.isTensor = isTensor

local function fail(fname, msg) L.raise(fname .. ': ' .. msg) end

local function cfail() L.raise(lastError()) end

-- a C op failed under another name: its message under the user's function
local function cfailAs(fname) L.raise(fname .. ': ' .. (lastError():gsub('^[%w_ ]+: ', ''))) end

local function shapeStr(t)
   local c = t._c
   local parts = {}
   for i = 0, c.ndim - 1 do parts[#parts + 1] = tostring(c.shape[i]) end
   return '[' .. table.concat(parts, ', ') .. ']'
end
T.shapeStr = shapeStr

local function tableShapeStr(s)
   local parts = {}
   for i = 1, #s do parts[i] = type(s[i]) == 'number' and tostring(s[i]) or L.valueStr(s[i]) end
   return '[' .. table.concat(parts, ', ') .. ']'
end

local function typeName(x)
   if isTensor(x) then return 'tensor ' .. shapeStr(x) end
   return type(x)
end
T.typeName = typeName

local valueStr = L.valueStr

---------------------------------------------------------------------------
-- allocation
---------------------------------------------------------------------------

-- Forced collections.  A full cycle costs time in proportion to the whole
-- Lua heap, the user's tables included: the file names of a 60,000-sample
-- dataset make it about 15 ms here, against 0.1 to 1 ms for the package
-- alone.  The collections that only let memory be reused sooner (before a
-- block the cache cannot serve, and after backward) therefore wait until
-- the bytes allocated since the last collection reach 16 times the Lua
-- heap (snn.setReuseFactor changes the 16).  That bounds the collector's share of a training step's time (a
-- step does far more work per byte it allocates than a collection per byte
-- of heap) at the price of at most that much garbage held, once, in the
-- cache.  Collections for the live-memory bound (tensor.c's threshold)
-- always run.
local gcCount, gcSeconds = 0, 0 -- forced collections, and the seconds they took (snn.memoryStats)
local now = require('slayer.utils').now
local reuseFactor, reuseGap = 16, 0 -- snn.setReuseFactor; the gap in bytes, set after each collection

-- the heap that survived the last collection sets the gap (tensor.c keeps
-- it, and asks for a reuse collection only once it was allocated)
local function setReuseGap()
   reuseGap = reuseFactor * 1024 * collectgarbage('count')
   C.sl_mem_set_reuse_gap(reuseGap)
end

local function collect()
   local t0 = now()
   collectgarbage('collect')
   C.sl_mem_collected()
   setReuseGap()
   gcCount, gcSeconds = gcCount + 1, gcSeconds + (now() - t0)
end

--- forced collections so far: how many, and the seconds they took
function T._collections() return gcCount, gcSeconds end

--- the bytes to allocate between collections that only bring reuse
-- forward (beside tensor.c's own floor: 16 MB on the CPU, 4 MB on the GPU)
function T._reuseGap() return reuseGap end

-- sets the factor and the gap from the heap as it is now; returns the old factor
function T._setReuseFactor(f)
   local old = reuseFactor
   reuseFactor = f
   setReuseGap()
   return old
end

-- Collect before an allocation when the C allocator asks: live memory grew
-- past its threshold, or a large block (`numel` floats on `device`) is about
-- to come fresh from the system (or cudaMalloc) while garbage may hold
-- reusable ones and the gap has been allocated (tensor.c).
local function pressure(numel, device)
   if C.sl_mem_pressure_dev(numel * 4, device) ~= 0 then collect() end
end

local function shapeNumel(ndim, shape)
   local n = 1
   for i = 0, ndim - 1 do n = n * shape[i] end
   return n
end

-- the Lua object of a new C tensor (which the collector frees); one made
-- while autograd walks a graph goes into A.born, so that the walk can give
-- it back (T._release) once no node needs it
local function object(p, device)
   ffi.gc(p, C.sl_tensor_free)
   local t = setmetatable({_c = p, device = device}, Tensor)
   local born = A.born
   if born then born[t] = true end
   return t
end

local function wrap(ptr, fname)
   if ptr == nil then L.raise((fname and (fname .. ': ') or '') .. lastError()) end
   return object(ptr, DEVNAME[ptr.device])
end
T._wrap = wrap

local function deviceNum(device, fname)
   if device == nil then return 0 end
   local d = DEVNUM[device]
   if not d then fail(fname, "expected device 'cpu' or 'cuda', got " .. valueStr(device)) end
   return d
end
T._deviceNum = deviceNum

-- fill shapebuf from a Lua shape table; returns ndim
local function loadShape(shape, fname)
   if type(shape) ~= 'table' or isTensor(shape) then
      fail(fname, 'expected a shape table such as {2, 3}, got ' .. typeName(shape))
   end
   local n = #shape
   if n > 8 then fail(fname, 'expected at most 8 dimensions, got ' .. n) end
   for i = 1, n do
      local s = shape[i]
      if type(s) ~= 'number' or s < 0 or s % 1 ~= 0 or s > 2147483647 then
         fail(fname, 'expected non-negative integer sizes, got ' .. valueStr(s) .. ' in dimension ' .. i)
      end
      shapebuf[i - 1] = s
   end
   return n
end

-- an allocation failed: the C message under the name of the user's call
local function allocFail(fname)
   local msg = lastError()
   if fname then msg = fname .. ': ' .. (msg:gsub('^tensor: ', '')) end
   L.raise(msg)
end

-- A new tensor's storage.  When memory ran out, garbage the collector has
-- not reached yet may hold what is missing (tensor.c asks for collections
-- by counts, which cannot see the device's free memory or other
-- processes): collect and try once more before giving up.
local ENOMEM = C.SL_ENOMEM
local function newStorage(ndim, shape, device)
   local p = C.sl_tensor_new(ndim, shape, device)
   if p == nil and C.sl_last_error_code() == ENOMEM then
      collect()
      p = C.sl_tensor_new(ndim, shape, device)
   end
   return p
end

local function newTensor(ndim, device, fname)
   pressure(shapeNumel(ndim, shapebuf), device)
   local p = newStorage(ndim, shapebuf, device)
   if p == nil then allocFail(fname) end
   return object(p, DEVNAME[device])
end

local function emptyLike(t)
   local c = t._c
   pressure(shapeNumel(c.ndim, c.shape), c.device)
   local p = newStorage(c.ndim, c.shape, c.device)
   if p == nil then cfail() end
   return object(p, t.device)
end
T._emptyLike = emptyLike

local function emptyOf(shape, device, fname)
   fname = fname or 'empty'
   local n = loadShape(shape, fname)
   return newTensor(n, device or 0, fname)
end
T._emptyOf = emptyOf

-- shape arguments: a table, or numbers (Torch7's torch.zeros(2, 3)); an
-- optional trailing device string
local function shapeArgs(fname, a, ...)
   if type(a) == 'number' then
      local s, dev = {a}, nil
      local n = select('#', ...)
      for i = 1, n do
         local v = select(i, ...)
         if type(v) == 'number' then s[#s + 1] = v
         elseif i == n and type(v) == 'string' then dev = v
         else fail(fname, 'expected sizes as numbers, got ' .. type(v)) end
      end
      return s, deviceNum(dev, fname)
   end
   return a, deviceNum((...), fname)
end

function T.empty(...)
   local shape, dev = shapeArgs('empty', ...)
   return emptyOf(shape, dev, 'empty')
end

function T.zeros(...)
   local shape, dev = shapeArgs('zeros', ...)
   local t = emptyOf(shape, dev, 'zeros')
   if C.sl_fill(t._c, 0) ~= 0 then cfail() end
   return t
end

function T.ones(...)
   local shape, dev = shapeArgs('ones', ...)
   local t = emptyOf(shape, dev, 'ones')
   if C.sl_fill(t._c, 1) ~= 0 then cfail() end
   return t
end

function T.full(shape, value, device)
   if type(value) ~= 'number' then fail('full', 'expected a number as value, got ' .. type(value)) end
   local t = emptyOf(shape, deviceNum(device, 'full'), 'full')
   if C.sl_fill(t._c, value) ~= 0 then cfail() end
   return t
end

-- uniform [0, 1) values of `shape` on device number `dev`; errors name fname
function T._rand(shape, dev, fname)
   local t = emptyOf(shape, dev, fname)
   if C.sl_rand_uniform(t._c, 0, 1) ~= 0 then cfail() end
   return t
end

function T.rand(...)
   local shape, dev = shapeArgs('rand', ...)
   return T._rand(shape, dev, 'rand')
end

function T.randn(...)
   local shape, dev = shapeArgs('randn', ...)
   local t = emptyOf(shape, dev, 'randn')
   if C.sl_rand_normal(t._c, 0, 1) ~= 0 then cfail() end
   return t
end

function T.bernoulli(shape, p, device)
   if type(p) ~= 'number' or not (p >= 0 and p <= 1) then
      fail('bernoulli', 'expected a probability in [0, 1], got ' .. valueStr(p))
   end
   local t = emptyOf(shape, deviceNum(device, 'bernoulli'), 'bernoulli')
   if C.sl_rand_bernoulli(t._c, p) ~= 0 then cfail() end
   return t
end

function T.arange(a, b, step)
   if b == nil then a, b = 1, a end
   step = step or 1
   if type(a) ~= 'number' or type(b) ~= 'number' or type(step) ~= 'number' or step == 0 then
      fail('arange', 'expected numbers (from, to[, step]) with step ~= 0')
   end
   local n = math.max(0, math.floor((b - a) / step) + 1)
   local t = emptyOf({n}, 0, 'arange')
   local d = t._c.data
   for i = 0, n - 1 do d[i] = a + i * step end
   return t
end

-- flatten a nested table, checking it is rectangular; returns flat, shape
-- #t of a table with holes is any of its borders: count the entries too
local function checkList(t, where)
   local n = 0
   for _ in pairs(t) do n = n + 1 end
   if n ~= #t then
      fail('fromtable', 'expected a list of numbers without holes' .. where .. ', got ' .. n .. ' entries for length '
         .. #t)
   end
end

local function flattenNested(values)
   local shape = {}
   local probe = values
   while type(probe) == 'table' and not isTensor(probe) do
      shape[#shape + 1] = #probe
      probe = probe[1]
   end
   local flat, nd = {}, #shape
   local function walk(v, d)
      if d > nd then
         if type(v) ~= 'number' then fail('fromtable', 'expected numbers, got ' .. type(v)) end
         flat[#flat + 1] = v
         return
      end
      if type(v) ~= 'table' or #v ~= shape[d] then
         fail('fromtable', 'nested table is not rectangular: expected ' .. shape[d] .. ' entries at depth ' .. d
            .. ', got ' .. (type(v) == 'table' and #v or type(v)))
      end
      checkList(v, ' at depth ' .. d)
      for i = 1, #v do walk(v[i], d + 1) end
   end
   walk(values, 1)
   return flat, shape
end

function T.fromtable(values, shape, device)
   if type(values) ~= 'table' or isTensor(values) then
      fail('fromtable', 'expected a table of numbers, got ' .. typeName(values))
   end
   if type(shape) == 'string' then shape, device = nil, shape end
   deviceNum(device, 'fromtable')
   if shape ~= nil then loadShape(shape, 'fromtable') end -- checked before the sizes are multiplied
   local flat, nshape
   if type(values[1]) == 'table' then
      flat, nshape = flattenNested(values)
      if shape then
         local n = 1
         for i = 1, #shape do n = n * shape[i] end
         if n ~= #flat then
            fail('fromtable', 'shape ' .. tableShapeStr(shape) .. ' holds ' .. n .. ' values, the table has ' .. #flat)
         end
         nshape = shape
      end
   else
      flat = values
      checkList(flat, '')
      for i = 1, #flat do
         if type(flat[i]) ~= 'number' then
            fail('fromtable', 'expected numbers, got ' .. type(flat[i]) .. ' at index ' .. i)
         end
      end
      nshape = shape or {#flat}
      local n = 1
      for i = 1, #nshape do n = n * nshape[i] end
      if n ~= #flat then
         fail('fromtable', 'shape ' .. tableShapeStr(nshape) .. ' holds ' .. n .. ' values, the table has ' .. #flat)
      end
   end
   local t = emptyOf(nshape, 0, 'fromtable')
   local d = t._c.data
   for i = 1, #flat do d[i - 1] = flat[i] end
   if device and device ~= 'cpu' then return t:to(device) end
   return t
end

--- Wrap n floats at a host pointer into a new tensor of the given shape (copy).
-- ptr points to floats (float * or void *, e.g. from malloc or another C
-- library), or is a float array (ffi.new('float[?]', n)), which must hold the
-- shape's n values; behind a pointer the caller vouches for them.
function T.fromPointer(ptr, shape)
   if type(ptr) ~= 'cdata' or ptr == nil then
      fail('fromPointer', 'expected a non-NULL pointer (cdata), got ' .. (type(ptr) == 'cdata' and 'NULL' or type(ptr)))
   end
   local ct = tostring(ffi.typeof(ptr))
   if not ct:match('^ctype<const float [%*%[]') and not ct:match('^ctype<float [%*%[]')
      and ct ~= 'ctype<void *>' and ct ~= 'ctype<const void *>' then
      fail('fromPointer', 'expected a pointer to floats (or void *) or a float array, got ' .. ct)
   end
   local t = emptyOf(shape, 0, 'fromPointer')
   local n = t:numel()
   local len = L.ffiLength(ptr)
   if len and len < n then
      fail('fromPointer', 'the array holds ' .. len .. ' floats, the shape ' .. tableShapeStr(shape) .. ' needs ' .. n)
   end
   ffi.copy(t._c.data, ptr, n * 4)
   return t
end

---------------------------------------------------------------------------
-- inspection
---------------------------------------------------------------------------

function Tensor:shape()
   local c = self._c
   local s = {}
   for i = 1, c.ndim do s[i] = c.shape[i - 1] end
   return s
end

-- a dimension outside 1..ndim (0 is PyTorch's first: say they count from 1 here)
local function dimOutOfRange(fname, d, t)
   fail(fname, 'dimension ' .. d .. ' out of range for a ' .. t._c.ndim .. '-D tensor ' .. shapeStr(t)
      .. (d == 0 and ' (dimensions count from 1 here, as in Torch; -1 is the last)' or ''))
end

-- x:size()'s table prints as its shape in the REPL: [2, 2, 34, 34, 300]
local Size = {__tostring = function(s) return '[' .. table.concat(s, ', ') .. ']' end}

function Tensor:size(d)
   local c = self._c
   if d == nil then return setmetatable(self:shape(), Size) end
   if type(d) ~= 'number' or d % 1 ~= 0 then fail('size', 'expected an integer dimension, got ' .. valueStr(d)) end
   if d < 0 then d = c.ndim + 1 + d end
   if d < 1 or d > c.ndim then
      dimOutOfRange('size', d, self)
   end
   return c.shape[d - 1]
end

function Tensor:dim() return self._c.ndim end
Tensor.nDimension = Tensor.dim

function Tensor:numel()
   local c = self._c
   local n = 1
   for i = 0, c.ndim - 1 do n = n * c.shape[i] end
   return n
end
Tensor.nElement = Tensor.numel

function Tensor:isContiguous() return C.sl_tensor_is_contiguous(self._c) ~= 0 end

function Tensor:stride(d)
   local c = self._c
   if d ~= nil then
      if type(d) ~= 'number' or d % 1 ~= 0 then fail('stride', 'expected an integer dimension, got ' .. valueStr(d)) end
      if d < 0 then d = c.ndim + 1 + d end
      if d < 1 or d > c.ndim then
         dimOutOfRange('stride', d, self)
      end
      return tonumber(c.stride[d - 1])
   end
   local s = {}
   for i = 1, c.ndim do s[i] = tonumber(c.stride[i - 1]) end
   return s
end

function Tensor:data()
   if self.device ~= 'cpu' then fail('data', 'tensor is on ' .. self.device .. '; call :cpu() first') end
   if not self:isContiguous() then fail('data', 'tensor is not contiguous; call :contiguous() first') end
   return self._c.data
end

--- t:data() is a raw pointer, which does not keep t alive: once nothing
-- refers to t any more, a collection (which any allocation may run) frees
-- its memory under the pointer, and the compiler may drop a local that is
-- not used later.  Code that uses the pointer after allocating calls
-- T._anchor(t) after its last use: an FFI call, which the compiler keeps,
-- so t is referred to until then.
function T._anchor(t) C.sl_tensor_is_contiguous(t._c) end

local function cpuContiguous(t)
   if t.device ~= 'cpu' then t = t:cpu() end
   if not t:isContiguous() then t = t:contiguous() end
   return t
end

function Tensor:totable()
   local t = cpuContiguous(self)
   local d, out = t._c.data, {}
   for i = 1, t:numel() do out[i] = floatAt(d, i - 1) end
   T._anchor(t) -- (a copy when self was not contiguous: alive until here)
   return out
end

function Tensor:item()
   local n = self:numel()
   if n ~= 1 then fail('item', 'expected a one-element tensor, got ' .. shapeStr(self)) end
   local t = cpuContiguous(self)
   return floatAt(t._c.data, 0)
end

---------------------------------------------------------------------------
-- printing (Torch7 style)
---------------------------------------------------------------------------

local function fmtNumbers(vals)
   local allInt, maxAbs = true, 0
   for _, v in ipairs(vals) do
      if v ~= v or v == math.huge or v == -math.huge then allInt = false
      else
         if v % 1 ~= 0 then allInt = false end
         if math.abs(v) > maxAbs then maxAbs = math.abs(v) end
      end
   end
   if allInt and maxAbs < 1e9 then return '%' .. (#string.format('%d', maxAbs) + 2) .. 'd', true end
   if maxAbs ~= 0 and (maxAbs >= 1e5 or maxAbs < 1e-3) then return '%12.4e', false end
   local intDigits = maxAbs >= 1 and (math.floor(math.log10(maxAbs)) + 1) or 1
   return '%' .. (intDigits + 7) .. '.4f', false
end

local function formatMatrix(d, off, rows, cols, rs, cs, lines)
   local edge = 3
   local rowIdx, colIdx = {}, {}
   local function pick(n, out)
      if n <= 2 * edge + 1 then for i = 0, n - 1 do out[#out + 1] = i end
      else
         for i = 0, edge - 1 do out[#out + 1] = i end
         out[#out + 1] = false
         for i = n - edge, n - 1 do out[#out + 1] = i end
      end
   end
   pick(rows, rowIdx)
   pick(cols, colIdx)
   local vals = {}
   for _, r in ipairs(rowIdx) do
      if r then for _, c in ipairs(colIdx) do if c then vals[#vals + 1] = floatAt(d, off + r * rs + c * cs) end end end
   end
   local f, isInt = fmtNumbers(vals)
   for _, r in ipairs(rowIdx) do
      if not r then lines[#lines + 1] = ' ...'
      else
         local parts = {}
         for _, c in ipairs(colIdx) do
            if not c then parts[#parts + 1] = ' ...'
            else
               local v = floatAt(d, off + r * rs + c * cs)
               parts[#parts + 1] = isInt and string.format(f, v) or string.format(f, v)
            end
         end
         lines[#lines + 1] = table.concat(parts)
      end
   end
end

function Tensor:__tostring()
   local t = cpuContiguous(self)
   local c = t._c
   local nd, lines = c.ndim, {}
   local sizes = {}
   for i = 0, nd - 1 do sizes[#sizes + 1] = c.shape[i] end
   local dev = self.device == 'cuda' and 'slayer.CudaTensor' or 'slayer.FloatTensor'
   local sizeStr = #sizes > 0 and table.concat(sizes, 'x') or 'scalar'
   if t:numel() == 0 then return '[' .. dev .. ' of size ' .. sizeStr .. ', empty]' end
   local d = c.data
   if nd == 0 then
      lines[1] = string.format('%g', floatAt(d, 0))
   elseif nd == 1 then
      formatMatrix(d, 0, sizes[1], 1, 1, 0, lines)
   elseif nd == 2 then
      formatMatrix(d, 0, sizes[1], sizes[2], sizes[2], 1, lines)
   else
      local rows, cols = sizes[nd - 1], sizes[nd]
      local nslices = t:numel() / (rows * cols)
      local shown = {}
      if nslices <= 6 then for i = 0, nslices - 1 do shown[#shown + 1] = i end
      else shown = {0, 1, 2, false, nslices - 2, nslices - 1} end
      for _, s in ipairs(shown) do
         if not s then lines[#lines + 1] = '...\n'
         else
            local idx, rem = {}, s
            for k = nd - 2, 1, -1 do
               idx[k] = rem % sizes[k] + 1
               rem = math.floor(rem / sizes[k])
            end
            lines[#lines + 1] = '(' .. table.concat(idx, ',') .. ',.,.) = '
            formatMatrix(d, s * rows * cols, rows, cols, cols, 1, lines)
            lines[#lines + 1] = ''
         end
      end
   end
   lines[#lines + 1] = '[' .. dev .. ' of size ' .. sizeStr .. ']'
   return table.concat(lines, '\n')
end

---------------------------------------------------------------------------
-- autograd entry points
---------------------------------------------------------------------------

function Tensor:requiresGrad(flag)
   if flag == nil then return self._rg == true end
   if self._node then fail('requiresGrad', 'only leaf tensors (not results of recorded ops) can change this flag') end
   self._rg = flag and true or false
   return self
end

function Tensor:isLeaf() return self._node == nil end

function Tensor:detach()
   local c = self._c
   local p = C.sl_tensor_view(c, c.ndim, c.shape, c.stride, c.offset)
   return wrap(p, 'detach')
end

local function sameShape(a, b)
   local ca, cb = a._c, b._c
   if ca.ndim ~= cb.ndim then return false end
   for i = 0, ca.ndim - 1 do if ca.shape[i] ~= cb.shape[i] then return false end end
   return true
end

-- add g into leaf.grad, which keeps the leaf's shape (optimizers rely on it)
local function accumulate(leaf, g)
   if not sameShape(g, leaf) then
      if g:numel() ~= leaf:numel() then
         fail('backward', 'gradient ' .. shapeStr(g) .. ' does not fit leaf ' .. shapeStr(leaf))
      end
      g = g:reshape(leaf:shape())
   end
   if not g:isContiguous() then g = g:contiguous() end
   local grad = leaf.grad
   if grad == nil then
      leaf.grad = g:clone()
   else
      if not isTensor(grad) or grad:numel() ~= g:numel() then
         fail('backward', 'leaf ' .. shapeStr(leaf) .. ' holds a grad of ' .. typeName(grad)
            .. ', cannot add a gradient ' .. shapeStr(g))
      end
      if C.sl_axpy(grad._c, 1, g._c) ~= 0 then cfail() end
   end
end

-- autograd.run's release: frees a gradient the walk made and let go of
local function releaseBorn(g)
   local born = A.born
   if born and born[g] and rawget(g, '_c') then
      born[g] = nil
      T._release(g)
   end
end

local function addGrads(a, b)
   return a + b
end

function Tensor:backward(grad)
   if grad == nil then
      if self:numel() ~= 1 then
         fail('backward', 'a gradient argument is needed for a non-scalar result ' .. shapeStr(self))
      end
      grad = T.ones(self:shape(), self.device)
   elseif not isTensor(grad) then
      fail('backward', 'expected a gradient tensor, got ' .. typeName(grad))
   elseif not sameShape(grad, self) or grad.device ~= self.device then
      fail('backward', 'gradient ' .. shapeStr(grad) .. ' on ' .. grad.device .. ' does not match result '
         .. shapeStr(self) .. ' on ' .. self.device)
   end
   A.run(self, grad, accumulate, addGrads, releaseBorn)
   -- the graph's activations just became garbage: when they are large,
   -- collect now so the next step reuses their blocks from the cache
   -- instead of faulting in fresh pages
   if C.sl_mem_live_bytes() > 64 * 1024 * 1024 and C.sl_mem_since_bytes() >= reuseGap then collect() end
end

function Tensor:zeroGrad()
   if self.grad then self.grad:fill(0) end
   return self
end

T.noGrad = A.noGrad

---------------------------------------------------------------------------
-- copy, fill, views
---------------------------------------------------------------------------

-- Every in-place write starts here: it needs distinct elements (an
-- expanded view repeats them), contiguous ones for the ops that ask, and it
-- counts in the storage's version, which autograd checks at backward.
local function writeInPlace(t, fname, contiguous)
   if contiguous and not t:isContiguous() then
      fail(fname, 'tensor ' .. shapeStr(t) .. ' must be contiguous (call :contiguous() first)')
   end
   local c = t._c
   -- an empty tensor has no elements to share (its strides may be 0)
   local empty = t:numel() == 0
   for i = 0, c.ndim - 1 do
      if c.stride[i] == 0 and c.shape[i] > 1 and not empty then
         fail(fname, 'cannot write in place into the expanded view ' .. shapeStr(t)
            .. ' (its elements share memory); write into a :contiguous() copy')
      end
   end
   C.sl_tensor_bump_version(c)
end

local function fillWith(t, v, fname)
   writeInPlace(t, fname)
   if C.sl_fill(t._c, v) ~= 0 then cfail() end
   return t
end

function Tensor:fill(v)
   if type(v) ~= 'number' then fail('fill', 'expected a number, got ' .. type(v)) end
   return fillWith(self, v, 'fill')
end

function Tensor:zero() return fillWith(self, 0, 'zero') end

function Tensor:copy(src)
   if not isTensor(src) then fail('copy', 'expected a source tensor, got ' .. typeName(src)) end
   if src:numel() ~= self:numel() then
      fail('copy', 'sizes differ: destination ' .. shapeStr(self) .. ', source ' .. shapeStr(src))
   end
   writeInPlace(self, 'copy')
   if src.device ~= self.device then
      if not src:isContiguous() then src = src:contiguous() end
      if not self:isContiguous() then
         local tmp = emptyLike(self)
         if C.sl_copy(tmp._c, src._c) ~= 0 then cfail() end
         src = tmp
      end
   end
   if C.sl_copy(self._c, src._c) ~= 0 then cfail() end
   return self
end

local function viewOf(t, ndim, device)
   -- shapebuf/stridebuf hold the view geometry
   local c = t._c
   local p = C.sl_tensor_view(c, ndim, shapebuf, stridebuf, c.offset)
   if p == nil then cfail() end
   return object(p, t.device)
end

-- Give an internal temporary's memory back now instead of at the next
-- collection (the collector sees only the small Lua object, so a large
-- temporary that is garbage still holds its block, and a later allocation
-- of its size class misses the cache and forces a collection).  Only for
-- tensors that never left the function that made them; `t` is unusable
-- afterwards.  A view only drops its reference to the storage.
-- A released tensor raises an error on any use, rather than handing C a
-- NULL pointer.
local Released = {
   __index = function(_, k)
      L.raise('tensor: this tensor was released (' .. tostring(k) .. ' read after its memory was given back): '
         .. 'a gradient kept past the backward function that received it, or an internal temporary; '
         .. 'keep a clone instead')
   end,
   __tostring = function() return 'tensor (released)' end,
}

function T._release(t)
   local c = t._c
   t._c = nil
   t.device = nil
   setmetatable(t, Released)
   C.sl_tensor_free(ffi.gc(c, nil))
end

local function rawContiguous(t)
   local out = emptyLike(t)
   if C.sl_copy(out._c, t._c) ~= 0 then cfail() end
   return out
end

function Tensor:contiguous()
   if self:isContiguous() then return self end
   local out = rawContiguous(self)
   return A.record(out, {self}, function(g) return g end, 1)
end

function Tensor:clone()
   local out = rawContiguous(self)
   return A.record(out, {self}, function(g) return g end, 1)
end

-- resolve a -1 in a target shape against numel n
local function resolveShape(shape, n, fname)
   if type(shape) ~= 'table' or isTensor(shape) then
      fail(fname, 'expected a shape table, got ' .. typeName(shape))
   end
   local nd = #shape
   -- before anything fills the 8-entry shape buffers
   if nd > 8 then fail(fname, 'expected at most 8 dimensions, got ' .. nd) end
   local out, prod, infer = {}, 1, nil
   for i = 1, nd do
      local s = shape[i]
      if s == -1 and not infer then infer = i
      elseif type(s) ~= 'number' or s < 0 or s % 1 ~= 0 or s > 2147483647 then
         fail(fname, 'invalid size ' .. valueStr(s) .. ' in dimension ' .. i
            .. ' (expected a non-negative integer, or -1 once)')
      else prod = prod * s end
      out[i] = s
   end
   if infer then
      if prod == 0 or n % prod ~= 0 then
         fail(fname, 'cannot infer -1 in ' .. tableShapeStr(shape) .. ' for ' .. n .. ' elements')
      end
      out[infer] = n / prod
      prod = n
   end
   if prod ~= n then
      fail(fname, 'shape ' .. tableShapeStr(shape) .. ' holds ' .. prod .. ' elements, the tensor has ' .. n)
   end
   return out
end

local function shapeFromArgs(a, ...)
   if type(a) == 'number' then return {a, ...} end
   return a
end

local function reshapeRaw(t, shape)
   local nd = #shape
   local s = 1
   for i = nd, 1, -1 do
      shapebuf[i - 1] = shape[i]
      stridebuf[i - 1] = s
      s = s * shape[i]
   end
   return viewOf(t, nd)
end

function Tensor:view(...)
   local shape = resolveShape(shapeFromArgs(...), self:numel(), 'view')
   if not self:isContiguous() then
      fail('view', 'tensor ' .. shapeStr(self) .. ' is not contiguous; use :reshape() (copies) instead')
   end
   local inShape = self:shape()
   local out = reshapeRaw(self, shape)
   return A.record(out, {self}, function(g) return g:reshape(inShape) end, 1)
end

function Tensor:reshape(...)
   local shape = resolveShape(shapeFromArgs(...), self:numel(), 'reshape')
   local src = self
   if not self:isContiguous() then src = self:contiguous() end
   local inShape = self:shape()
   local out = reshapeRaw(src, shape)
   return A.record(out, {src}, function(g) return g:reshape(inShape) end, 1)
end

function Tensor:flatten() return self:reshape({self:numel()}) end

local function checkDim(t, d, fname, extra)
   local nd = t._c.ndim + (extra or 0)
   if type(d) ~= 'number' or d % 1 ~= 0 then fail(fname, 'expected an integer dimension, got ' .. valueStr(d)) end
   if d < 0 then d = nd + 1 + d end
   if d < 1 or d > nd then
      dimOutOfRange(fname, d, t)
   end
   return d
end

function Tensor:narrow(dim, start, len)
   dim = checkDim(self, dim, 'narrow')
   local c = self._c
   local size = c.shape[dim - 1]
   if type(start) ~= 'number' or type(len) ~= 'number' or start % 1 ~= 0 or len % 1 ~= 0
      or start < 1 or len < 0 or start + len - 1 > size then
      fail('narrow', 'range start ' .. valueStr(start) .. ', length ' .. valueStr(len) .. ' outside dimension '
         .. dim .. ' of size ' .. size .. ' in ' .. shapeStr(self))
   end
   local nd = c.ndim
   for i = 0, nd - 1 do shapebuf[i] = c.shape[i]; stridebuf[i] = c.stride[i] end
   shapebuf[dim - 1] = len
   local p = C.sl_tensor_view(c, nd, shapebuf, stridebuf, c.offset + (start - 1) * c.stride[dim - 1])
   local out = wrap(p, 'narrow')
   if A.needed(self) then
      local inShape, dev = self:shape(), self.device
      A.record(out, {self}, function(g)
         local gin = T.zeros(inShape, dev)
         gin:narrow(dim, start, len):copy(g)
         return gin
      end, 1)
   end
   return out
end

function Tensor:select(dim, index)
   dim = checkDim(self, dim, 'select')
   local c = self._c
   local size = c.shape[dim - 1]
   if type(index) ~= 'number' or index % 1 ~= 0 then fail('select', 'expected an integer index, got ' .. valueStr(index)) end
   if index < 0 then index = size + 1 + index end
   if index < 1 or index > size then
      fail('select', 'index ' .. index .. ' out of range for dimension ' .. dim .. ' of size ' .. size
         .. ' in ' .. shapeStr(self))
   end
   local nd, k = c.ndim, 0
   for i = 0, nd - 1 do
      if i ~= dim - 1 then shapebuf[k] = c.shape[i]; stridebuf[k] = c.stride[i]; k = k + 1 end
   end
   local p = C.sl_tensor_view(c, nd - 1, shapebuf, stridebuf, c.offset + (index - 1) * c.stride[dim - 1])
   local out = wrap(p, 'select')
   if A.needed(self) then
      local inShape, dev = self:shape(), self.device
      A.record(out, {self}, function(g)
         local gin = T.zeros(inShape, dev)
         gin:select(dim, index):copy(g)
         return gin
      end, 1)
   end
   return out
end

function Tensor:permute(...)
   local perm = shapeFromArgs(...)
   local c = self._c
   local nd = c.ndim
   if type(perm) ~= 'table' or #perm ~= nd then
      fail('permute', 'expected a permutation of ' .. nd .. ' dimensions, got ' .. typeName(perm))
   end
   local seen, inv = {}, {}
   for i = 1, nd do
      local p = perm[i]
      if type(p) ~= 'number' or p % 1 ~= 0 or p < 1 or p > nd or seen[p] then
         fail('permute', 'expected a permutation of 1..' .. nd .. ', got ' .. tableShapeStr(perm))
      end
      seen[p] = true
      inv[p] = i
      shapebuf[i - 1] = c.shape[p - 1]
      stridebuf[i - 1] = c.stride[p - 1]
   end
   local out = viewOf(self, nd)
   return A.record(out, {self}, function(g) return g:permute(inv) end, 1)
end

function Tensor:transpose(d1, d2)
   local nd = self._c.ndim
   if nd == 2 and d1 == nil then d1, d2 = 1, 2 end
   d1 = checkDim(self, d1, 'transpose')
   d2 = checkDim(self, d2, 'transpose')
   local perm = {}
   for i = 1, nd do perm[i] = i end
   perm[d1], perm[d2] = d2, d1
   return self:permute(perm)
end
Tensor.t = Tensor.transpose

function Tensor:unsqueeze(dim)
   if self._c.ndim >= 8 then fail('unsqueeze', 'expected at most 8 dimensions, got ' .. (self._c.ndim + 1)) end
   dim = checkDim(self, dim, 'unsqueeze', 1)
   local s = self:shape()
   table.insert(s, dim, 1)
   if self:isContiguous() then return self:view(s) end
   return self:reshape(s)
end

function Tensor:squeeze(dim)
   local s, out = self:shape(), {}
   if dim then
      dim = checkDim(self, dim, 'squeeze')
      for i = 1, #s do if i ~= dim or s[i] ~= 1 then out[#out + 1] = s[i] end end
   else
      for i = 1, #s do if s[i] ~= 1 then out[#out + 1] = s[i] end end
   end
   return self:reshape(out)
end

-- view of t with size-1 dimensions repeated to shape; fname names the call
local function expandTo(t, shape, fname)
   local self = t
   if type(shape) ~= 'table' or isTensor(shape) then
      fail(fname, 'expected a shape table, got ' .. typeName(shape))
   end
   local c = self._c
   local nd, off = #shape, #shape - c.ndim
   -- before anything fills the 8-entry shape buffers
   if nd > 8 then fail(fname, 'expected at most 8 dimensions, got ' .. nd) end
   if off < 0 then fail(fname, 'cannot expand ' .. shapeStr(self) .. ' to fewer dimensions ' .. tableShapeStr(shape)) end
   for i = 1, nd do
      local s = shape[i]
      if type(s) ~= 'number' or s < 0 or s % 1 ~= 0 or s > 2147483647 then
         fail(fname, 'invalid size ' .. valueStr(s) .. ' in dimension ' .. i .. ' (expected a non-negative integer)')
      end
      local j = i - off
      if j < 1 then
         shapebuf[i - 1] = s
         stridebuf[i - 1] = 0
      else
         local cs = c.shape[j - 1]
         if cs == s then shapebuf[i - 1] = s; stridebuf[i - 1] = cs == 1 and 0 or c.stride[j - 1]
         elseif cs == 1 then shapebuf[i - 1] = s; stridebuf[i - 1] = 0
         else fail(fname, 'cannot expand ' .. shapeStr(self) .. ' to ' .. tableShapeStr(shape)) end
      end
   end
   local out = viewOf(self, nd)
   if A.needed(self) then
      local src = self
      A.record(out, {self}, function(g) return T.sumTo(g, src) end, 1)
   end
   return out
end

--- View with size-1 dimensions repeated to shape (no copy; read-only use).
function Tensor:expand(...) return expandTo(self, shapeFromArgs(...), 'expand') end

function Tensor:expandAs(other)
   if not isTensor(other) then fail('expandAs', 'expected a tensor, got ' .. typeName(other)) end
   return expandTo(self, other:shape(), 'expandAs')
end

function T.cat(list, dim)
   if type(list) ~= 'table' or #list == 0 then fail('cat', 'expected a non-empty list of tensors') end
   local first = list[1]
   if not isTensor(first) then fail('cat', 'expected tensors, got ' .. typeName(first) .. ' at position 1') end
   dim = dim or first:dim()
   dim = checkDim(first, dim, 'cat')
   local shape = first:shape()
   local total = 0
   for i, t in ipairs(list) do
      if not isTensor(t) then fail('cat', 'expected tensors, got ' .. typeName(t) .. ' at position ' .. i) end
      if t.device ~= first.device then
         fail('cat', 'tensors on different devices (' .. first.device .. ' at 1, ' .. t.device .. ' at ' .. i .. ')')
      end
      if t:dim() ~= #shape then
         fail('cat', 'expected ' .. #shape .. '-D tensors, got ' .. shapeStr(t) .. ' at position ' .. i)
      end
      for d = 1, #shape do
         if d ~= dim and t:size(d) ~= shape[d] then
            fail('cat', 'sizes must match except in dimension ' .. dim .. ': ' .. shapeStr(first) .. ' and '
               .. shapeStr(t) .. ' at position ' .. i)
         end
      end
      total = total + t:size(dim)
   end
   shape[dim] = total
   local out = emptyOf(shape, DEVNUM[first.device], 'cat')
   local pos = 1
   for _, t in ipairs(list) do
      local n = t:size(dim)
      if n > 0 then
         local dst = A.noGrad(Tensor.narrow, out, dim, pos, n)
         if C.sl_copy(dst._c, t._c) ~= 0 then cfail() end
      end
      pos = pos + n
   end
   local sizes = {}
   for i, t in ipairs(list) do sizes[i] = t:size(dim) end
   return A.record(out, list, function(g)
      local gs, p = {}, 1
      for i = 1, #sizes do
         gs[i] = g:narrow(dim, p, sizes[i])
         p = p + sizes[i]
      end
      return unpack(gs, 1, #sizes)
   end, #list)
end

function T.stack(list, dim)
   if type(list) ~= 'table' or #list == 0 then fail('stack', 'expected a non-empty list of tensors') end
   if not isTensor(list[1]) then fail('stack', 'expected tensors, got ' .. typeName(list[1]) .. ' at position 1') end
   dim = checkDim(list[1], dim or 1, 'stack', 1)
   local us = {}
   for i, t in ipairs(list) do
      if not isTensor(t) then fail('stack', 'expected tensors, got ' .. typeName(t) .. ' at position ' .. i) end
      if i > 1 and not sameShape(t, list[1]) then
         fail('stack', 'tensors must have equal shapes: ' .. shapeStr(list[1]) .. ' and ' .. shapeStr(t))
      end
      us[i] = t:unsqueeze(dim)
   end
   return T.cat(us, dim)
end

---------------------------------------------------------------------------
-- devices
---------------------------------------------------------------------------

function Tensor:to(device)
   local d = deviceNum(device, 'to')
   if DEVNUM[self.device] == d then return self end
   local src = self:isContiguous() and self or rawContiguous(self)
   local out = emptyOf(self:shape(), d, 'to')
   if C.sl_copy(out._c, src._c) ~= 0 then cfail() end
   local from = self.device
   return A.record(out, {self}, function(g) return g:to(from) end, 1)
end

function Tensor:cuda() return self:to('cuda') end
function Tensor:cpu() return self:to('cpu') end

--- Move this tensor's storage to device in place (the Lua object keeps its
-- identity, so optimizers and modules holding it see the move).
function Tensor:moveTo_(device)
   deviceNum(device, 'moveTo_')
   local moved = self:detach():to(device)
   self._c = moved._c
   self.device = moved.device
   if self.grad then self.grad:moveTo_(device) end
   return self
end

---------------------------------------------------------------------------
-- element-wise maths
---------------------------------------------------------------------------

local ADD, SUB, MUL, DIV, POW = C.SL_ADD, C.SL_SUB, C.SL_MUL, C.SL_DIV, C.SL_POW
local GT, GE, LT, LE, EQ, NE = C.SL_GT, C.SL_GE, C.SL_LT, C.SL_LE, C.SL_EQ, C.SL_NE

local function contig(t)
   if C.sl_tensor_is_contiguous(t._c) ~= 0 then return t end
   return rawContiguous(t)
end
T._contig = contig

local function broadcastShape(a, b, fname)
   local ca, cb = a._c, b._c
   local na, nb = ca.ndim, cb.ndim
   local n = na > nb and na or nb
   for i = 1, n do
      local ia, ib = na - n + i, nb - n + i
      local sa = ia >= 1 and ca.shape[ia - 1] or 1
      local sb = ib >= 1 and cb.shape[ib - 1] or 1
      local s
      if sa == sb or sb == 1 then s = sa
      elseif sa == 1 then s = sb
      else
         fail(fname, 'shapes ' .. shapeStr(a) .. ' and ' .. shapeStr(b) .. ' cannot be broadcast')
      end
      shapebuf[i - 1] = s
   end
   if a.device ~= b.device then
      fail(fname, 'operands on different devices (' .. a.device .. ' and ' .. b.device .. ')')
   end
   return n
end

T._sameShape = sameShape

--- Sum g down to the shape of t (undoing broadcasting).
function T.sumTo(g, t)
   if not isTensor(g) or not isTensor(t) then
      fail('sumTo', 'expected two tensors, got ' .. typeName(g) .. ' and ' .. typeName(t))
   end
   if sameShape(g, t) then return g end
   local out = emptyLike(t)
   if C.sl_sum_to(out._c, contig(g)._c) ~= 0 then cfailAs('sumTo') end
   return out
end
local sumTo = T.sumTo

local function rawBinary(op, a, b, fname)
   local n = broadcastShape(a, b, fname)
   local out = newTensor(n, DEVNUM[a.device], fname)
   if C.sl_binary(op, out._c, contig(a)._c, contig(b)._c) ~= 0 then cfail() end
   return out
end

local function rawScalar(op, a, s, rev)
   local out = emptyLike(a)
   if C.sl_binary_scalar(op, out._c, contig(a)._c, s, rev and 1 or 0) ~= 0 then cfail() end
   return out
end
T._rawBinary = rawBinary
T._rawScalar = rawScalar

local function checkOperand(x, fname)
   if type(x) ~= 'number' and not isTensor(x) then
      fail(fname, 'expected a tensor or a number, got ' .. type(x))
   end
end

function T.add(a, b)
   checkOperand(a, 'add'); checkOperand(b, 'add')
   if type(b) == 'number' then
      return A.record(rawScalar(ADD, a, b), {a}, function(g) return g end, 1)
   elseif type(a) == 'number' then
      return A.record(rawScalar(ADD, b, a), {b}, function(g) return g end, 1)
   end
   local out = rawBinary(ADD, a, b, 'add')
   return A.record(out, {a, b}, function(g)
      return a._rg and sumTo(g, a) or nil, b._rg and sumTo(g, b) or nil
   end, 2)
end

function T.sub(a, b)
   checkOperand(a, 'sub'); checkOperand(b, 'sub')
   if type(b) == 'number' then
      return A.record(rawScalar(SUB, a, b), {a}, function(g) return g end, 1)
   elseif type(a) == 'number' then
      return A.record(rawScalar(SUB, b, a, true), {b}, function(g) return -g end, 1)
   end
   local out = rawBinary(SUB, a, b, 'sub')
   return A.record(out, {a, b}, function(g)
      return a._rg and sumTo(g, a) or nil, b._rg and sumTo(-g, b) or nil
   end, 2)
end

function T.mul(a, b)
   checkOperand(a, 'mul'); checkOperand(b, 'mul')
   if type(b) == 'number' then
      return A.record(rawScalar(MUL, a, b), {a}, function(g) return g * b end, 1)
   elseif type(a) == 'number' then
      return A.record(rawScalar(MUL, b, a), {b}, function(g) return g * a end, 1)
   end
   local out = rawBinary(MUL, a, b, 'mul')
   return A.record(out, {a, b}, function(g)
      return a._rg and sumTo(g * b:detach(), a) or nil, b._rg and sumTo(g * a:detach(), b) or nil
   end, 2)
end

function T.div(a, b)
   checkOperand(a, 'div'); checkOperand(b, 'div')
   if type(b) == 'number' then
      return A.record(rawScalar(DIV, a, b), {a}, function(g) return g / b end, 1)
   elseif type(a) == 'number' then
      local out = rawScalar(DIV, b, a, true)
      return A.record(out, {b}, function(g)
         local bd = b:detach()
         return -(g * a) / (bd * bd)
      end, 1)
   end
   local out = rawBinary(DIV, a, b, 'div')
   return A.record(out, {a, b}, function(g)
      local bd = b:detach()
      return a._rg and sumTo(g / bd, a) or nil,
         b._rg and sumTo(-(g * a:detach()) / (bd * bd), b) or nil
   end, 2)
end

local function compare(op, fname)
   return function(a, b)
      checkOperand(b, fname)
      if not isTensor(a) then fail(fname, 'expected a tensor, got ' .. type(a)) end
      if type(b) == 'number' then return rawScalar(op, a, b) end
      return rawBinary(op, a, b, fname)
   end
end
Tensor.gt = compare(GT, 'gt')
Tensor.ge = compare(GE, 'ge')
Tensor.lt = compare(LT, 'lt')
Tensor.le = compare(LE, 'le')
Tensor.eq = compare(EQ, 'eq')
Tensor.ne = compare(NE, 'ne')

-- element-wise max/min (no autograd); a number on either side
local function extremum(op, fname)
   return function(a, b)
      if type(a) == 'number' then a, b = b, a end
      if not isTensor(a) then fail(fname, 'expected a tensor and a tensor or number, got ' .. typeName(a)) end
      checkOperand(b, fname)
      if type(b) == 'number' then return rawScalar(op, a, b) end
      return rawBinary(op, a, b, fname)
   end
end
T.maximum = extremum(C.SL_MAX, 'maximum')
T.minimum = extremum(C.SL_MIN, 'minimum')

Tensor.add, Tensor.sub, Tensor.mul, Tensor.div = T.add, T.sub, T.mul, T.div
Tensor.__add, Tensor.__sub, Tensor.__mul, Tensor.__div = T.add, T.sub, T.mul, T.div

local function rawUnary(op, a)
   local out = emptyLike(a)
   if C.sl_unary(op, out._c, contig(a)._c) ~= 0 then cfail() end
   return out
end
T._rawUnary = rawUnary

function Tensor:__unm()
   return A.record(rawUnary(C.SL_NEG, self), {self}, function(g) return -g end, 1)
end
Tensor.neg = Tensor.__unm

function Tensor:abs()
   local a = self
   return A.record(rawUnary(C.SL_ABS, a), {a}, function(g) return g * rawUnary(C.SL_SIGN, a) end, 1)
end

function Tensor:exp()
   local out = rawUnary(C.SL_EXP, self)
   return A.record(out, {self}, function(g) return g * out:detach() end, 1)
end

function Tensor:log()
   local a = self
   return A.record(rawUnary(C.SL_LOG, a), {a}, function(g) return g / a:detach() end, 1)
end

function Tensor:sqrt()
   local out = rawUnary(C.SL_SQRT, self)
   return A.record(out, {self}, function(g) return g / (out:detach() * 2) end, 1)
end

function Tensor:sigmoid()
   local out = rawUnary(C.SL_SIGMOID, self)
   return A.record(out, {self}, function(g)
      local o = out:detach()
      return g * o * (1 - o)
   end, 1)
end

function Tensor:tanh()
   local out = rawUnary(C.SL_TANH, self)
   return A.record(out, {self}, function(g)
      local o = out:detach()
      return g * (1 - o * o)
   end, 1)
end

function Tensor:relu()
   local a = self
   return A.record(rawUnary(C.SL_RELU, a), {a}, function(g) return g * rawScalar(GT, a, 0) end, 1)
end

function Tensor:square()
   local a = self
   return A.record(rawUnary(C.SL_SQUARE, a), {a}, function(g) return g * a:detach() * 2 end, 1)
end

-- piecewise-constant functions: zero gradient, so not recorded
function Tensor:sign() return rawUnary(C.SL_SIGN, self) end
function Tensor:floor() return rawUnary(C.SL_FLOOR, self) end
function Tensor:ceil() return rawUnary(C.SL_CEIL, self) end
--- Round half to even (as numpy and PyTorch do).
function Tensor:round() return rawUnary(C.SL_ROUND, self) end

function Tensor:pow(p)
   local a = self
   if isTensor(p) then
      local out = rawBinary(POW, a, p, 'pow')
      return A.record(out, {a, p}, function(g)
         local ad, pd, od = a:detach(), p:detach(), out:detach()
         return a._rg and sumTo(g * pd * (ad:pow(pd - 1)), a) or nil,
            p._rg and sumTo(g * od * ad:log(), p) or nil
      end, 2)
   end
   if type(p) ~= 'number' then fail('pow', 'expected a number or tensor exponent, got ' .. type(p)) end
   local out = rawScalar(POW, a, p)
   return A.record(out, {a}, function(g) return g * a:detach():pow(p - 1) * p end, 1)
end
Tensor.__pow = function(a, b)
   if not isTensor(a) and type(a) ~= 'number' then
      fail('pow', 'expected a number or tensor base, got ' .. type(a))
   end
   if type(a) == 'number' then
      local base = T.full(b:shape(), a, b.device)
      return base:pow(b)
   end
   return a:pow(b)
end

function Tensor:clamp(lo, hi)
   lo = lo or -math.huge
   hi = hi or math.huge
   if type(lo) ~= 'number' or type(hi) ~= 'number' or lo > hi then
      fail('clamp', 'expected numbers lo <= hi, got ' .. valueStr(lo) .. ', ' .. valueStr(hi))
   end
   local a = contig(self)
   local out = emptyLike(a)
   if C.sl_clamp(out._c, a._c, lo, hi) ~= 0 then cfail() end
   return A.record(out, {self}, function(g)
      local mask = rawScalar(GE, a, lo) * rawScalar(LE, a, hi)
      return g * mask
   end, 1)
end

--- In place: clamp to [lo, hi] (no autograd), e.g. delays after a step.
function Tensor:clamp_(lo, hi)
   lo = lo or -math.huge
   hi = hi or math.huge
   if type(lo) ~= 'number' or type(hi) ~= 'number' or lo > hi then
      fail('clamp_', 'expected numbers lo <= hi, got ' .. valueStr(lo) .. ', ' .. valueStr(hi))
   end
   writeInPlace(self, 'clamp_', true)
   if C.sl_clamp(self._c, self._c, lo, hi) ~= 0 then cfail() end
   return self
end

--- In place: self = self + alpha * x (no autograd).
function Tensor:add_(x, alpha)
   writeInPlace(self, 'add_', true)
   if type(x) == 'number' then
      if C.sl_binary_scalar(ADD, self._c, self._c, x, 0) ~= 0 then cfail() end
      return self
   end
   if not isTensor(x) or x:numel() ~= self:numel() then
      fail('add_', 'expected a tensor of ' .. shapeStr(self) .. ', got ' .. typeName(x))
   end
   if alpha ~= nil and type(alpha) ~= 'number' then fail('add_', 'expected a number alpha, got ' .. typeName(alpha)) end
   if C.sl_axpy(self._c, alpha or 1, contig(x)._c) ~= 0 then cfail() end
   return self
end

--- In place: self = self * s (no autograd).
function Tensor:mul_(s)
   if type(s) ~= 'number' then fail('mul_', 'expected a number, got ' .. type(s)) end
   writeInPlace(self, 'mul_', true)
   if C.sl_binary_scalar(MUL, self._c, self._c, s, 0) ~= 0 then cfail() end
   return self
end

local isFinite = L.isFinite

--- In place: uniform numbers in [lo, hi) (default [0, 1)).
function Tensor:uniform_(lo, hi)
   lo, hi = lo or 0, hi or 1
   if not isFinite(lo) or not isFinite(hi) or lo > hi then
      fail('uniform_', 'expected finite numbers lo <= hi, got ' .. valueStr(lo) .. ', ' .. valueStr(hi))
   end
   writeInPlace(self, 'uniform_', true)
   if C.sl_rand_uniform(self._c, lo, hi) ~= 0 then cfail() end
   return self
end

--- In place: normal numbers of the given mean and standard deviation (default 0, 1).
function Tensor:normal_(mean, std)
   mean, std = mean or 0, std or 1
   if not isFinite(mean) or not isFinite(std) or std < 0 then
      fail('normal_', 'expected a finite mean and a finite std >= 0, got ' .. valueStr(mean) .. ', ' .. valueStr(std))
   end
   writeInPlace(self, 'normal_', true)
   if C.sl_rand_normal(self._c, mean, std) ~= 0 then cfail() end
   return self
end

--- In place: 1 with probability p (default 0.5), else 0.
function Tensor:bernoulli_(p)
   p = p or 0.5
   if type(p) ~= 'number' or not (p >= 0 and p <= 1) then
      fail('bernoulli_', 'expected a probability in [0, 1], got ' .. valueStr(p))
   end
   writeInPlace(self, 'bernoulli_', true)
   if C.sl_rand_bernoulli(self._c, p) ~= 0 then cfail() end
   return self
end

---------------------------------------------------------------------------
-- reductions
---------------------------------------------------------------------------

local function reducedShape(t, dim)
   local s = t:shape()
   s[dim] = 1
   return s
end

function Tensor:sum(dim)
   local a = contig(self)
   local inShape = self:shape()
   local out
   if dim == nil and self.device == 'cuda' then
      -- stays on the device: a reduction over the flattened tensor, no wait
      out = emptyOf({1}, DEVNUM.cuda, 'sum')
      if C.sl_sum_dim(out._c, reshapeRaw(a, {a:numel()})._c, 0) ~= 0 then cfail() end
   elseif dim == nil then
      local r = ffi.new('double[1]')
      if C.sl_sum_all(r, a._c) ~= 0 then cfail() end
      out = T.full({1}, L.doubleAt(r, 0), self.device)
   else
      dim = checkDim(self, dim, 'sum')
      out = emptyOf(reducedShape(self, dim), DEVNUM[self.device], 'sum')
      if C.sl_sum_dim(out._c, a._c, dim - 1) ~= 0 then cfail() end
   end
   return A.record(out, {self}, function(g)
      if dim == nil then g = g:reshape(T.onesShape(#inShape)) end
      return g:expand(inShape):contiguous()
   end, 1)
end

function T.onesShape(n)
   local s = {}
   for i = 1, n do s[i] = 1 end
   return s
end

function Tensor:mean(dim)
   if dim ~= nil then dim = checkDim(self, dim, 'mean') end
   local n = dim == nil and self:numel() or self:size(dim)
   return self:sum(dim) / n
end

--- max(dim): values and 1-based indices along dim (kept as size 1).
-- max(): the largest value as a number, and its 1-based flat index.
local function maxOf(self, dim, fname)
   local a = contig(self)
   if dim == nil then
      local v, i = ffi.new('float[1]'), ffi.new('int64_t[1]')
      if C.sl_max_all(v, i, a._c) ~= 0 then cfailAs(fname) end
      return floatAt(v, 0), tonumber(i[0]) + 1
   end
   dim = checkDim(self, dim, fname)
   local shape = reducedShape(self, dim)
   local values = emptyOf(shape, DEVNUM[self.device], fname)
   local idx = emptyOf(shape, DEVNUM[self.device], fname)
   if C.sl_max_dim(values._c, idx._c, a._c, dim - 1) ~= 0 then cfailAs(fname) end
   local inShape, dev = self:shape(), self.device
   A.record(values, {self}, function(g)
      local gin = emptyOf(inShape, DEVNUM[dev], 'max')
      if C.sl_scatter_dim(gin._c, idx._c, contig(g)._c, dim - 1) ~= 0 then cfail() end
      return gin
   end, 1)
   return values, rawScalar(ADD, idx, 1)
end

function Tensor:max(dim) return maxOf(self, dim, 'max') end

function Tensor:min(dim)
   if dim == nil then
      local v, i = ffi.new('float[1]'), ffi.new('int64_t[1]')
      if C.sl_min_all(v, i, contig(self)._c) ~= 0 then cfailAs('min') end
      return floatAt(v, 0), tonumber(i[0]) + 1
   end
   dim = checkDim(self, dim, 'min')
   local v, i = maxOf(-self, dim, 'min')
   return -v, i
end

function Tensor:argmax(dim)
   if dim == nil then
      local _, i = maxOf(self, nil, 'argmax')
      return i
   end
   local _, i = A.noGrad(maxOf, self, dim, 'argmax')
   return i
end

function Tensor:countNonzero()
   return tonumber(C.sl_count_nonzero(contig(self)._c))
end

---------------------------------------------------------------------------
-- matrix products
---------------------------------------------------------------------------

local function gemmInto(out, a, ta, b, tb, beta)
   if C.sl_gemm(out._c, contig(a)._c, ta, contig(b)._c, tb, 1, beta or 0) ~= 0 then cfail() end
   return out
end

function Tensor:matmul(b)
   local a = self
   if not isTensor(b) then fail('matmul', 'expected a tensor, got ' .. type(b)) end
   if a.device ~= b.device then fail('matmul', 'operands on different devices (' .. a.device .. ' and ' .. b.device .. ')') end
   local na, nb = a:dim(), b:dim()
   if na == 2 and nb == 2 then
      local m, k, k2, n = a:size(1), a:size(2), b:size(1), b:size(2)
      if k ~= k2 then
         fail('matmul', 'expected [' .. m .. ', ' .. k .. '] x [' .. k .. ', N], got ' .. shapeStr(a) .. ' x ' .. shapeStr(b))
      end
      local out = gemmInto(emptyOf({m, n}, DEVNUM[a.device], 'matmul'), a, 0, b, 0)
      return A.record(out, {a, b}, function(g)
         local ga, gb
         if a._rg then ga = gemmInto(emptyOf({m, k}, DEVNUM[a.device]), g, 0, b:detach(), 1) end
         if b._rg then gb = gemmInto(emptyOf({k, n}, DEVNUM[a.device]), a:detach(), 1, g, 0) end
         return ga, gb
      end, 2)
   elseif na == 2 and nb == 1 then
      return a:matmul(b:reshape({b:size(1), 1})):reshape({a:size(1)})
   elseif na == 1 and nb == 2 then
      return a:reshape({1, a:size(1)}):matmul(b):reshape({b:size(2)})
   elseif na == 3 and nb == 3 then
      local B = math.max(a:size(1), b:size(1))
      local m, k, k2, n = a:size(2), a:size(3), b:size(2), b:size(3)
      if k ~= k2 or (a:size(1) ~= B and a:size(1) ~= 1) or (b:size(1) ~= B and b:size(1) ~= 1) then
         fail('matmul', 'expected [B, ' .. m .. ', ' .. k .. '] x [B, ' .. k .. ', N], got ' .. shapeStr(a) .. ' x ' .. shapeStr(b))
      end
      local function bmm(shape, x, tx, y, ty)
         local out = emptyOf(shape, DEVNUM[a.device], 'matmul')
         if C.sl_bmm(out._c, contig(x)._c, tx, contig(y)._c, ty, 1, 0) ~= 0 then cfail() end
         return out
      end
      local out = bmm({B, m, n}, a, 0, b, 0)
      return A.record(out, {a, b}, function(g)
         local ga, gb
         if a._rg then ga = sumTo(bmm({B, m, k}, g, 0, b:detach(), 1), a) end
         if b._rg then gb = sumTo(bmm({B, k, n}, a:detach(), 1, g, 0), b) end
         return ga, gb
      end, 2)
   end
   fail('matmul', 'expected 2-D or 3-D operands, got ' .. shapeStr(a) .. ' x ' .. shapeStr(b))
end

---------------------------------------------------------------------------
-- misc
---------------------------------------------------------------------------

function Tensor:type() return self.device == 'cuda' and 'slayer.CudaTensor' or 'slayer.FloatTensor' end

--- Largest absolute difference between two tensors of equal size.
function T.maxAbsDiff(a, b)
   if not isTensor(a) or not isTensor(b) then
      fail('maxAbsDiff', 'expected two tensors, got ' .. typeName(a) .. ' and ' .. typeName(b))
   end
   if shapeStr(a) ~= shapeStr(b) then fail('maxAbsDiff', 'shapes ' .. shapeStr(a) .. ' and ' .. shapeStr(b) .. ' differ') end
   if a:numel() == 0 then return 0 end
   local d = (a:detach() - b:detach()):abs()
   return (d:max())
end

return T
