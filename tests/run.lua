--[[
Test entry point: `luajit tests/run.lua [busted options] [spec files]`.

Runs the C tests (build/tests/c/*, when built) and then the busted specs in
tests/ under LuaJIT, and ends with one line `N passed, M failed` totalling
both.  Exits non-zero when anything failed.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/tests/run.lua$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. root .. '/tests/?.lua;' .. package.path

-- C tests: each binary prints "c-tests: N passed, M failed"
local cPassed, cFailed = 0, 0
local builddir = os.getenv('SLAYER_BUILD') or (root .. '/build')
local p = io.popen('ls ' .. builddir .. '/tests/c/test_* 2>/dev/null')
for exe in p:lines() do
   if not exe:match('[^/]*$'):match('%.') then
      local out = io.popen(exe .. ' 2>&1')
      local text = out:read('*a')
      out:close()
      io.write(text)
      local np, nf = text:match('c%-tests: (%d+) passed, (%d+) failed')
      if np then
         cPassed, cFailed = cPassed + tonumber(np), cFailed + tonumber(nf)
      else
         print('C test ' .. exe .. ' did not report its results')
         cFailed = cFailed + 1
      end
   end
end
p:close()
_G.SLAYER_EXTRA_COUNTS = {passed = cPassed, failed = cFailed}

local args = {...}
local hasOutput, hasPath = false, false
for _, a in ipairs(args) do
   if a == '-o' or a:match('^%-%-output') then hasOutput = true end
   if not a:match('^%-') then hasPath = true end
end
arg = {}
if not hasOutput then arg[#arg + 1] = '-o'; arg[#arg + 1] = 'support.summary' end
arg[#arg + 1] = '--lpath=' .. root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. root .. '/tests/?.lua'
for _, a in ipairs(args) do arg[#arg + 1] = a end
if not hasPath then arg[#arg + 1] = root .. '/tests' end
require 'busted.runner'({standalone = false})
