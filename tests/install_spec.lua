-- The LuaRocks package: `luarocks make rockspec/slayer-scm-1.rockspec --tree
-- <dir>` builds and installs the modules and the library, and `require
-- 'slayer'` then works from any directory with that tree on the paths.
local H = require 'support.helpers'

local function sh(cmd)
   local p = io.popen('(' .. cmd .. ') 2>&1; rc=$?; echo; echo "__rc=$rc"')
   local out = p:read('*a')
   p:close()
   local body, rc = out:match('^(.-)\n__rc=(%d+)%s*$')
   return tonumber(rc), body
end

describe('luarocks install', function()
   it('installs into a tree from which require works in another directory', function()
      local tmp = os.tmpname()
      os.remove(tmp)
      local src, tree, elsewhere = tmp .. '/src', tmp .. '/tree', tmp .. '/elsewhere'
      assert.are.equal(0, (sh('mkdir -p ' .. src .. ' ' .. elsewhere)))
      -- build from a copy so the checkout stays clean (luarocks builds in ./build.luarocks)
      local rc, out = sh('cp -r CMakeLists.txt csrc lua rockspec ' .. src)
      assert.are.equal(0, rc, out)
      rc, out = sh('cd ' .. src .. ' && luarocks --lua-version=5.1 make rockspec/slayer-scm-1.rockspec --tree '
         .. tree .. ' SLAYER_CUDA=OFF')
      assert.are.equal(0, rc, out)
      local script = [[
local snn = require 'slayer'
local T = snn.tensor
local x = T.fromtable({1, 2, 3}):requiresGrad(true)
local y = (x * x):sum()
y:backward()
io.write(string.format('%g %g %s', y:item(), x.grad:totable()[3], package.searchpath('libslayer', package.cpath)))
]]
      local f = io.open(elsewhere .. '/check.lua', 'w')
      f:write(script)
      f:close()
      rc, out = sh('cd ' .. elsewhere .. ' && env -u SLAYER_LIB LUA_PATH="' .. tree .. '/share/lua/5.1/?.lua;' .. tree
         .. '/share/lua/5.1/?/init.lua;;" LUA_CPATH="' .. tree .. '/lib/lua/5.1/?.so;;" luajit check.lua')
      assert.are.equal(0, rc, out)
      local val, grad, lib = out:match('^(%S+) (%S+) (%S+)$')
      assert.are.equal('14', val, out)
      assert.are.equal('6', grad)
      assert.are.equal(tree .. '/lib/lua/5.1/libslayer.so', lib)
      sh('rm -rf ' .. tmp)
   end)
end)
