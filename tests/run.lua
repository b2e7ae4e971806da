--[[
Test entry point: `luajit tests/run.lua [busted options] [spec files]`.

Runs the C tests (build/tests/c/*, when built), then -- when the whole suite
runs and the build has libslayer_cuda_emu.so -- the GPU specs against the
CUDA back end on the host emulator (tests/cudaemu), in a child process (a
process loads one CUDA library), and then the busted specs in tests/ under
LuaJIT.  Ends with one line `N passed, M failed` totalling all three.  Exits
non-zero when anything failed.
]]
local root = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/tests/run.lua$') or '.'
package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. root .. '/tests/?.lua;' .. package.path
local interpreter = arg and arg[-1] or 'luajit'
local child = os.getenv('SLAYER_CUDAEMU_CHILD') ~= nil

local args = {...}
local hasOutput, hasPath = false, false
for _, a in ipairs(args) do
   if a == '-o' or a:match('^%-%-output') then hasOutput = true end
   if not a:match('^%-') then hasPath = true end
end

local function shellQuote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local extra = {passed = 0, failed = 0, skipped = 0}
local builddir = os.getenv('SLAYER_BUILD') or (root .. '/build')

-- C tests: each binary prints "c-tests: N passed, M failed"
if not child then
   local p = io.popen('ls ' .. shellQuote(builddir) .. '/tests/c/test_* 2>/dev/null')
   for exe in p:lines() do
      if not exe:match('[^/]*$'):match('%.') then
         local out = io.popen(shellQuote(exe) .. ' 2>&1')
         local text = out:read('*a')
         out:close()
         io.write(text)
         local np, nf = text:match('c%-tests: (%d+) passed, (%d+) failed')
         if np then
            extra.passed, extra.failed = extra.passed + tonumber(np), extra.failed + tonumber(nf)
         else
            print('C test ' .. exe .. ' did not report its results')
            extra.failed = extra.failed + 1
         end
      end
   end
   p:close()
end

-- the GPU specs on the host emulator
local emulated = builddir .. '/libslayer_cuda_emu.so'
local f = io.open(emulated, 'rb')
if f then f:close() end
if f and not child and not hasPath then
   print('GPU specs on the CUDA back end emulated on the host (' .. emulated .. '):')
   -- threads and blocks in a shuffled (fixed-seed) order: a race changes the results
   local order = os.getenv('SLAYER_CUDAEMU_ORDER') or 'shuffle'
   -- (the child's closing line unlabelled: it is read here)
   local cmd = 'SLAYER_SUMMARY_LABEL= SLAYER_CUDAEMU_CHILD=1 SLAYER_CUDAEMU_ORDER=' .. shellQuote(order) .. ' SLAYER_CUDA_LIB='
      .. shellQuote(emulated) .. ' ' .. shellQuote(interpreter) .. ' '
      .. shellQuote(root .. '/tests/run.lua') .. ' ' .. shellQuote(root .. '/tests/cuda_spec.lua') .. ' 2>&1'
   local out = io.popen(cmd)
   local last
   for line in out:lines() do
      print(line)
      if line:match('^%d+ passed, %d+ failed') then last = line end
   end
   out:close()
   local np, nf = (last or ''):match('^(%d+) passed, (%d+) failed')
   if np then
      extra.passed, extra.failed = extra.passed + tonumber(np), extra.failed + tonumber(nf)
      extra.skipped = extra.skipped + tonumber(last:match(', (%d+) skipped') or 0)
   else
      print('the emulated GPU specs did not report their results')
      extra.failed = extra.failed + 1
   end
   print('(end of the emulated GPU specs)')
end
_G.SLAYER_EXTRA_COUNTS = extra

arg = {}
if not hasOutput then arg[#arg + 1] = '-o'; arg[#arg + 1] = 'support.summary' end
arg[#arg + 1] = '--lpath=' .. root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;' .. root .. '/tests/?.lua'
for _, a in ipairs(args) do arg[#arg + 1] = a end
if not hasPath then arg[#arg + 1] = root .. '/tests' end
require 'busted.runner'({standalone = false})
