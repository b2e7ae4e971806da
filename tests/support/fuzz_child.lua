--[[
Child process of tests/fuzz_spec.lua: `luajit fuzz_child.lua <dir> <first>`
makes every call of the fuzz targets (tests/support/fuzz_cases.lua) from
call number <first> on, in a fixed order, and prints per call
   B <id> <names> <label>[ !must]   before it (names: a|b, what an error must name;
                                    !must: the call has to raise)
   R <id> <ms> ok                   after it returned
   R <id> <ms> error <message>      after it raised (newlines as \n)
so that a crash shows which call it was; `D <count>` when all ran.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/tests/support/fuzz_child.lua$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. root .. '/tests/?.lua;' .. package.path
local dir, first = arg[1], tonumber(arg[2] or 1)
local only = arg[3] and tonumber(arg[3])

local snn = require 'slayer'
local T = snn.tensor
snn.manualSeed(1)
snn.setNumThreads(1)
local now = snn.utils.now
io.stdout:setvbuf('line')

-- the values every argument position gets
local function t5(shape) return T.rand(shape or {2, 3, 4, 4, 8}) end
local TENSORS = {
   {'empty {0}', function() return T.zeros({0}) end},
   {'empty {0,3}', function() return T.zeros({0, 3}) end},
   {'0-D', function() return T.zeros({}) end},
   {'{3}', function() return T.rand({3}) end},
   {'{2,3}', function() return T.rand({2, 3}) end},
   {'{3,2}', function() return T.rand({3, 2}) end},
   {'5-D', function() return t5() end},
   {'5-D N=0', function() return T.zeros({0, 3, 4, 4, 8}) end},
   {'5-D T=0', function() return T.zeros({2, 3, 4, 4, 0}) end},
   {'5-D transposed', function() return t5({2, 3, 4, 8, 4}):transpose(4, 5) end},
   {'5-D narrowed', function() return t5({2, 3, 4, 4, 16}):narrow(5, 3, 8) end},
   {'5-D expanded', function() return T.rand({1, 3, 4, 4, 8}):expand({2, 3, 4, 4, 8}) end},
   {'2-D transposed', function() return T.rand({3, 2}):transpose(1, 2) end},
   {'nan {2,3}', function() return T.full({2, 3}, 0 / 0) end},
   {'nan 5-D', function() return T.full({2, 3, 4, 4, 8}, 0 / 0) end},
}
local SCALARS = {
   {'nil', function() return nil end},
   {'0', function() return 0 end},
   {'-1', function() return -1 end},
   {'1.5', function() return 1.5 end},
   {'nan', function() return 0 / 0 end},
   {'inf', function() return math.huge end},
   {'-inf', function() return -math.huge end},
   {'2^40', function() return 2 ^ 40 end},
   {'string', function() return 'x' end},
   {'true', function() return true end},
   {'{}', function() return {} end},
   {'{1,2}', function() return {1, 2} end},
   {'{-1}', function() return {-1} end},
   {'function', function() return function() end end},
   {'cdata', function() return require('ffi').new('int[2]') end},
}
local LIGHT = {SCALARS[1], SCALARS[2], SCALARS[5], SCALARS[9], SCALARS[10], SCALARS[11], TENSORS[1], TENSORS[7]}

local function values(c, pos)
   local list = {}
   if c.recv and pos == 1 then
      for _, v in ipairs(TENSORS) do list[#list + 1] = v end
      return list
   end
   local base = {}
   if c.pool == 'light' then base = {LIGHT} elseif c.pool == 'none' then base = {} else base = {SCALARS, TENSORS} end
   for _, b in ipairs(base) do for _, v in ipairs(b) do list[#list + 1] = v end end
   for _, v in ipairs(c.extra or {}) do
      if not v.pos or v.pos == pos then list[#list + 1] = v end
   end
   return list
end

local function escape(s) return (tostring(s):gsub('\\', '\\\\'):gsub('\n', '\\n')) end

local cases = require('support.fuzz_cases')(snn, dir)
local id = 0
for _, c in ipairs(cases) do
   for pos = 1, c.n do
      if not (c.skip and c.skip[pos]) then
         for _, v in ipairs(values(c, pos)) do
            id = id + 1
            if id >= first and (not only or id == only) then
               io.write('B ', id, ' ', table.concat(c.names, '|'), ' ', c.label, ' #', pos, '=', v[1], v.must and ' !must' or '', '\n')
               local ok, msg
               local t0 = now()
               ok, msg = pcall(function()
                  local args = c.args()
                  args[pos] = v[2]()
                  return c.call(unpack(args, 1, c.n))
               end)
               local ms = (now() - t0) * 1000
               if ok then
                  io.write(string.format('R %d %.1f ok\n', id, ms))
               else
                  io.write(string.format('R %d %.1f error %s\n', id, ms,
                     type(msg) == 'string' and escape(msg) or ('<non-string error: ' .. type(msg) .. '>')))
               end
               if id % 50 == 0 then collectgarbage('collect') end
            end
         end
      end
   end
end
io.write('D ', id, '\n')
