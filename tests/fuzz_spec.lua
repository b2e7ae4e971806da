-- Robustness of the public API: every public function and method called with
-- bad arguments (tests/support/fuzz_cases.lua lists the targets, fuzz_child.lua
-- makes the calls in child processes, so a crash cannot take busted down).
-- Bad input must give a Lua error naming the function, raised at the caller's
-- line: never a crash, a hang, a raw error from inside the package, or (for the
-- values a target marks `must`) a silently accepted call.
local snn = require 'slayer'

local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/tests/fuzz_spec.lua$') or '.'
if root:sub(1, 1) ~= '/' then root = os.getenv('PWD') .. '/' .. root end
local interpreter = 'luajit'
do
   local i = -1
   while arg and arg[i] do interpreter = arg[i] i = i - 1 end
end

local function shellQuote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local SLOW_MS = 3000      -- one call (a plot runs gnuplot: 0.7 s)
local CHILD_S = 60        -- one child process

-- run the children; returns the calls {id, names, label, must, ms, result, msg} and the crashes
local function runAll()
   local dir = os.tmpname()
   os.remove(dir)
   assert(os.execute('mkdir -p ' .. shellQuote(dir)) == 0)
   local calls, crashes, byId = {}, {}, {}
   local first, total = 1, nil
   while not total and #crashes < 50 do
      local cmd = 'cd ' .. shellQuote(dir) .. ' && timeout ' .. CHILD_S .. ' ' .. shellQuote(interpreter) .. ' '
         .. shellQuote(root .. '/tests/support/fuzz_child.lua') .. ' ' .. shellQuote(dir) .. ' ' .. first
         .. ' 2>&1; echo "EXIT $?"'
      local p = io.popen(cmd)
      local last, exit, tail = nil, nil, {}
      for line in p:lines() do
         local id, names, label = line:match('^B (%d+) (%S+) (.*)$')
         if id then
            id = tonumber(id)
            local must = label:match(' !must$') ~= nil
            local c = {id = id, names = names, label = label:gsub(' !must$', ''), must = must}
            calls[#calls + 1], byId[id], last = c, c, c
         else
            local rid, ms, res = line:match('^R (%d+) (%S+) (.*)$')
            if rid then
               local c = byId[tonumber(rid)]
               c.ms = tonumber(ms)
               c.result = res == 'ok' and 'ok' or 'error'
               c.msg = res:match('^error (.*)$')
            elseif line:match('^D %d+$') then
               total = tonumber(line:match('%d+'))
            elseif line:match('^EXIT %d+$') then
               exit = tonumber(line:match('%d+'))
            else
               tail[#tail + 1] = line
               if #tail > 5 then table.remove(tail, 1) end
            end
         end
      end
      p:close()
      if not total or exit ~= 0 then
         local where = last and not last.result and (last.id .. ' ' .. last.label) or ('after call ' .. (last and last.id or 0))
         crashes[#crashes + 1] = 'exit ' .. tostring(exit) .. ' at ' .. where .. ': ' .. table.concat(tail, ' | ')
         if total then break end
         first = (last and last.id or first) + 1
      end
   end
   os.execute('rm -rf ' .. shellQuote(dir))
   return calls, crashes, total
end

describe('fuzz: the public API under bad arguments', function()
   local calls, crashes, total

   setup(function()
      calls, crashes, total = runAll()
   end)

   it('made every call without a child process dying', function()
      assert.are.same({}, crashes)
      assert.is_true(total ~= nil and total > 5000, 'expected the children to make over 5000 calls, got ' .. tostring(total))
   end)

   it('answered every call', function()
      local missing = {}
      for _, c in ipairs(calls) do
         if not c.result then missing[#missing + 1] = c.id .. ' ' .. c.label end
      end
      assert.are.same({}, missing)
   end)

   it('raised errors as strings naming the function, at the caller, never from inside the package', function()
      local bad = {}
      for _, c in ipairs(calls) do
         if c.result == 'error' then
            local msg, named = c.msg, false
            for n in c.names:gmatch('[^|]+') do
               if msg:find(n .. ':', 1, true) then named = true end
            end
            local raw = msg:find('attempt to ', 1, true) or msg:find('bad argument', 1, true)
               or msg:find('/lua/slayer/', 1, true) or msg:find('stack overflow', 1, true)
               or msg:find('<non-string error', 1, true)
               or msg:find('FloatTensor of size', 1, true) -- a tensor printed whole
            if not named or raw then bad[#bad + 1] = c.label .. ' -> ' .. msg:sub(1, 200) end
         end
      end
      assert.are.same({}, bad)
   end)

   it('refused the values a target marks as nonsense', function()
      local accepted = {}
      for _, c in ipairs(calls) do
         if c.must and c.result ~= 'error' then accepted[#accepted + 1] = c.label end
      end
      assert.are.same({}, accepted)
   end)

   it('answered every call within ' .. SLOW_MS .. ' ms', function()
      local slow = {}
      for _, c in ipairs(calls) do
         if c.ms and c.ms > SLOW_MS then slow[#slow + 1] = string.format('%s: %.0f ms', c.label, c.ms) end
      end
      assert.are.same({}, slow)
   end)

   it('covers every public function and method', function()
      local T = snn.tensor
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute('mkdir -p ' .. shellQuote(dir)) == 0)
      local cases = require('support.fuzz_cases')(snn, dir)
      os.execute('rm -rf ' .. shellQuote(dir))
      local covered = {}
      for _, c in ipairs(cases) do covered[c.label:match('^[^(]*')] = true end
      -- not fuzzed, and why
      local exempt = {
         ['T.isTensor'] = 'takes anything', ['T.shapeStr'] = 'internal formatting', ['T.typeName'] = 'takes anything',
         ['T.onesShape'] = 'internal', ['T.noGrad'] = 'snn.noGrad', ['T.Tensor'] = 'the class',
         ['Tensor:__tostring'] = 'metamethod', ['Tensor:__index'] = 'metamethod', ['Tensor:__unm'] = 'neg',
         ['Tensor:__add'] = 'a + b', ['Tensor:__sub'] = 'T.sub', ['Tensor:__mul'] = 'T.mul', ['Tensor:__div'] = 'T.div',
         ['Tensor:__pow'] = 'a ^ b', ['Tensor:nDimension'] = 'dim', ['Tensor:nElement'] = 'numel',
         ['Tensor:t'] = 'transpose', ['Tensor:cuda'] = 'needs a GPU (cuda_spec)',
         ['snn.io.saccadeDefaults'] = 'a table', ['snn.io.Event'] = 'the class',
         ['snn.utils.options'] = 'parseOptions, then exits the process on a bad option',
         ['snn.getNumThreads'] = 'takes nothing',
      }
      local missing = {}
      local function need(key) if not covered[key] and not exempt[key] then missing[#missing + 1] = key end end
      for k, v in pairs(T) do
         if type(v) == 'function' and not k:match('^_') then need('T.' .. k) end
      end
      for k, v in pairs(T.Tensor) do
         if type(v) == 'function' and not k:match('^_') then need('Tensor:' .. k) end
      end
      for k, v in pairs(snn) do
         if type(v) == 'function' and not k:match('^_') then need('snn.' .. k) end
      end
      for _, m in ipairs({'io', 'utils', 'plot', 'predict', 'optim'}) do
         for k, v in pairs(snn[m]) do
            if type(v) == 'function' and not k:match('^_') then need('snn.' .. m .. '.' .. k) end
         end
      end
      table.sort(missing)
      assert.are.same({}, missing)
   end)
end)
