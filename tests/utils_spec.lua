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

   it('correct counts matches against labels given as a list or a tensor, and checks the count', function()
      local T = snn.tensor
      local out = T.zeros({3, 4, 1, 1, 5})
      out:narrow(2, 2, 1):fill(1) -- every sample predicts class 2
      assert.are.equal(2, U.correct(out, {2, 2, 1}))
      assert.are.equal(2, U.correct(out, T.fromtable({2, 2, 1}, {3})))
      local ok, err = pcall(U.correct, out, {2})
      assert.truthy(not ok and err:find('correct: 1 labels for a batch of 3 outputs', 1, true), err)
      ok, err = pcall(U.correct, out, 2)
      assert.truthy(not ok and err:find('correct: expected labels as a list or a tensor', 1, true), err)
   end)

   it('writeFiles writes every file or none, from strings or chunk producers', function()
      local dir = tmpdir()
      U.mkdir(dir)
      local function read(p)
         local f = io.open(p, 'rb')
         if not f then return nil end
         local s = f:read('*a')
         f:close()
         return s
      end
      U.writeFiles({{dir .. '/a.txt', 'A'}, {dir .. '/b.txt', function(emit) emit('B1'); emit('B2') end}})
      assert.are.equal('A', read(dir .. '/a.txt'))
      assert.are.equal('B1B2', read(dir .. '/b.txt'))
      -- the second file's producer fails: neither file changes, no temporary stays
      local ok, err = pcall(U.writeFiles, {{dir .. '/a.txt', 'new A'},
         {dir .. '/b.txt', function(emit) emit('x'); error('no more data', 0) end}}, 'demo')
      assert.is_false(ok)
      assert.truthy(err:find("demo: writing '" .. dir .. "/b.txt' failed: no more data", 1, true), err)
      assert.are.equal('A', read(dir .. '/a.txt'))
      assert.are.equal('B1B2', read(dir .. '/b.txt'))
      assert.is_nil(read(dir .. '/a.txt.tmp'))
      assert.is_nil(read(dir .. '/b.txt.tmp'))
      ok, err = pcall(U.writeFiles, {{dir .. '/c.txt', true}})
      assert.truthy(not ok and err:find('writeFiles: file 1 has text of type boolean', 1, true), err)
      os.execute("rm -rf '" .. dir .. "'")
   end)
end)
