-- snn.stats (the reference's learningStats, SPEC.md 17) and plots
local snn = require 'slayer'

local function fill(stat, n, loss, correct)
   stat.numSamples, stat.lossSum, stat.correctSamples = n, loss, correct
end

local function capture()
   local buf = {}
   return {write = function(_, ...) for _, s in ipairs({...}) do buf[#buf + 1] = s end end, flush = function() end},
      function() return table.concat(buf) end
end

describe('learning statistics', function()
   it('computes per-sample loss and accuracy, and nil when there is nothing to report', function()
      local st = snn.stats()
      assert.is_nil(st.training:loss())
      fill(st.training, 8, 4, 6)
      assert.are.equal(0.5, st.training:loss())
      assert.are.equal(0.75, st.training:accuracy())
      fill(st.training, 8, 4, 0)
      assert.is_nil(st.training:accuracy())
   end)

   it('logs, tracks min/max and best flags, and survives an epoch with no correct sample', function()
      local st = snn.stats()
      fill(st.training, 10, 5, 7); fill(st.testing, 10, 6, 5)
      st:update()
      assert.are.equal(0.5, st.training.minloss)
      assert.is_false(st.training.bestLoss) -- not set at the first update, as the reference
      assert.are.equal(0, st.training.numSamples)
      fill(st.training, 10, 4, 8); fill(st.testing, 10, 7, 0)
      st:update()
      assert.is_true(st.training.bestLoss)
      assert.is_true(st.training.bestAccuracy)
      assert.is_false(st.testing.bestLoss)
      assert.are.same({0.6, 0.7}, st.testing.lossLog)
      assert.are.same({0.5, false}, st.testing.accuracyLog)
      assert.are.equal(0.5, st.testing.maxAccuracy)
   end)

   it('prints the reference lines, redrawing in a terminal and appending elsewhere', function()
      local out, text = capture()
      local st = snn.stats{out = out, tty = false}
      fill(st.training, 10, 5, 7)
      st:print(0, 5, 1.25)
      assert.are.equal('Epoch :          0(i =       5),    1250.0000 ms elapsed\n'
         .. 'loss = 0.5                                accuracy = 0.7                      \n', text())
      local out2, text2 = capture()
      local tty = snn.stats{out = out2, tty = true}
      fill(tty.training, 10, 5, 7)
      tty:print(1)
      tty:print(1, nil, nil, {'header'}, {'footer'})
      local s = text2()
      assert.truthy(s:find('\27%[2A'))           -- moved up over the 2 lines printed before
      assert.truthy(s:find('\27%[2Kheader'))
      assert.truthy(s:find('\27%[2Kfooter'))
   end)

   it('shows progress, samples/s and the ETA when the epoch length is known', function()
      local out, text = capture()
      local st = snn.stats{out = out, tty = false, epochSamples = {train = 100, test = 20}}
      fill(st.training, 25, 5, 7)
      st:print(0, 2, 0.5)
      local s = text()
      assert.truthy(s:find('train %[') and s:find(' 25%%') and s:find('50.0 samples/s') and s:find('ETA 0:00:02'), s)
   end)

   it('saves the reference file layout and loads it back', function()
      local st = snn.stats()
      fill(st.training, 10, 5, 7); fill(st.testing, 10, 6, 5)
      st:update()
      fill(st.training, 10, 4.25, 8); fill(st.testing, 10, 5.5, 0)
      st:update()
      local prefix = os.tmpname() .. '-'
      st:save(prefix)
      local loss = io.open(prefix .. 'loss.txt', 'rb'):read('*a')
      assert.are.equal('#      Train        Test\r\n         0.5          0.6 \r\n       0.425         0.55 \r\n', loss)
      local acc = io.open(prefix .. 'accuracy.txt', 'rb'):read('*a')
      assert.are.equal('#      Train        Test\r\n         0.7          0.5 \r\n         0.8            0 \r\n', acc)
      local back = snn.stats()
      assert.are.equal(3, back:load(prefix)) -- rows // modulo * modulo + 1: the epoch to resume from
      assert.are.same({0.5, 0.425}, back.training.lossLog)
      assert.are.equal(0.425, back.training.minloss)
      assert.are.equal(0.8, back.training.maxAccuracy)
      assert.are.equal(1, back:load(prefix, 1))
      os.remove(prefix .. 'loss.txt')
      os.remove(prefix .. 'accuracy.txt')
   end)

   it('writes loss.txt and accuracy.txt both or neither', function()
      local st = snn.stats()
      fill(st.training, 10, 5, 7); fill(st.testing, 10, 6, 5)
      st:update()
      local prefix = os.tmpname() .. '-'
      -- a folder where accuracy.txt's temporary goes: the save fails and loss.txt is not written
      snn.utils.mkdir(prefix .. 'accuracy.txt.tmp')
      local ok, err = pcall(st.save, st, prefix)
      assert.is_false(ok)
      assert.truthy(tostring(err):find('stats:save: cannot open', 1, true), err)
      assert.is_false(snn.utils.exists(prefix .. 'loss.txt'))
      assert.is_false(snn.utils.exists(prefix .. 'loss.txt.tmp'))
      os.remove(prefix .. 'accuracy.txt.tmp')
      ok, err = pcall(st.save, st, 5)
      assert.truthy(not ok and tostring(err):find('stats:save: expected a path prefix', 1, true), err)
   end)

   it('plots loss and accuracy curves as PNG and SVG files', function()
      local st = snn.stats()
      for e = 1, 5 do
         fill(st.training, 10, 10 / e, 5 + e); fill(st.testing, 10, 12 / e, 4 + e)
         st:update()
      end
      local prefix = os.tmpname() .. '-'
      local files = st:plot{path = prefix}
      assert.are.equal(4, #files)
      for _, f in ipairs(files) do
         local s = io.open(f, 'rb'):read('*a')
         if f:match('%.png$') then
            assert.are.equal('\137PNG\r\n\26\n', s:sub(1, 8))
            local w = ((s:byte(17) * 256 + s:byte(18)) * 256 + s:byte(19)) * 256 + s:byte(20)
            assert.are.equal(800, w)
         else
            assert.truthy(s:find('<svg'))
         end
         os.remove(f)
      end
   end)
end)
