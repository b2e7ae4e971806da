-- snn.utils: folders and files written through a temporary
local snn = require 'slayer'
local U = snn.utils

local function tmpdir()
   local d = os.tmpname()
   os.remove(d)
   return d
end

local function isDir(path)
   local f = io.open(path .. '/.', 'rb')
   if f then f:close() end
   return f ~= nil
end

describe('mkdir', function()
   it('creates a folder and its parents, accepts an existing one, and needs no shell', function()
      local root = tmpdir()
      local deep = root .. "/a b/it's;x/c"
      assert.are.equal(deep, U.mkdir(deep))
      assert.is_true(isDir(deep))
      assert.are.equal(deep, U.mkdir(deep))
      assert.are.equal(root .. '/', U.mkdir(root .. '/'))
      os.execute("rm -rf '" .. root .. "'")
   end)

   it('raises an error naming the part that cannot be created (it used to return quietly)', function()
      local file = os.tmpname()
      local ok, err = pcall(U.mkdir, file .. '/sub/dir')
      assert.is_false(ok)
      assert.truthy(err:find("mkdir: cannot create '" .. file .. "': it exists and is not a folder", 1, true), err)
      os.remove(file)
   end)

   it('refuses a path that is not a string (mkdir(nil) used to create a folder called nil)', function()
      for _, bad in ipairs({false, 5, ''}) do
         local ok, err = pcall(U.mkdir, bad or nil)
         assert.is_false(ok)
         assert.truthy(err:find('mkdir: expected a folder path', 1, true), err)
      end
      assert.is_false(isDir('nil'))
   end)
end)

describe('writeFile', function()
   it('writes the text through path.tmp and leaves no temporary on failure', function()
      local path = os.tmpname()
      U.writeFile(path, 'hello\n')
      local f = io.open(path, 'rb')
      assert.are.equal('hello\n', f:read('*a'))
      f:close()
      assert.is_nil(io.open(path .. '.tmp', 'rb'))
      -- text nil: an error before anything is opened (path.tmp used to stay behind)
      local ok, err = pcall(U.writeFile, path, nil)
      assert.is_false(ok)
      assert.truthy(err:find('writeFile: expected the text to write', 1, true), err)
      assert.is_nil(io.open(path .. '.tmp', 'rb'))
      f = io.open(path, 'rb')
      assert.are.equal('hello\n', f:read('*a'))
      f:close()
      -- a folder in the way of the rename: the error names the path, the temporary is removed
      local dir = tmpdir()
      U.mkdir(dir .. '/inner')
      ok, err = pcall(U.writeFile, dir .. '/inner', 'x')
      assert.is_false(ok)
      assert.truthy(err:find("writeFile: writing '" .. dir .. "/inner' failed", 1, true), err)
      assert.is_nil(io.open(dir .. '/inner.tmp', 'rb'))
      ok, err = pcall(U.writeFile, nil, 'x')
      assert.truthy(not ok and err:find('writeFile: expected a file path', 1, true), err)
      ok, err = pcall(U.writeFile, dir .. '/missing/x.txt', 'x')
      assert.truthy(not ok and err:find('writeFile: cannot open', 1, true), err)
      os.execute("rm -rf '" .. dir .. "'")
      os.remove(path)
   end)
end)
