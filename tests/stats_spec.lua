-- snn.stats (the reference's learningStats, SPEC.md 17) and plots
local snn = require 'slayer'
local H = require 'support.helpers'

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
      -- an epoch without samples has no loss (the reference raises here):
      -- logged as missing, and not the best epoch
      fill(st.training, 0, 0, 0); fill(st.testing, 0, 0, 0)
      st:update()
      assert.is_false(st.training.bestLoss)
      assert.is_false(st.training.bestAccuracy)
      assert.are.same({0.5, 0.4, false}, st.training.lossLog)
      assert.are.equal(0.4, st.training.minloss)
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

   it('checks the arguments of print and load, and prints any whole epoch number as written', function()
      local out, text = capture()
      local st = snn.stats{out = out, tty = false}
      st:print(1e20, 2^63)
      assert.truthy(text():find('Epoch : 100000000000000000000(i = 9223372036854775808)', 1, true), text())
      assert.truthy(H.errorOf(function() st:print() end):find('stats:print: epoch must be a whole number, got nil', 1, true))
      assert.truthy(H.errorOf(function() st:print(1.5) end):find('stats:print: epoch must be a whole number, got 1.5', 1, true))
      assert.truthy(H.errorOf(function() st:print(1, 'x') end):find('stats:print: iter must be a whole number', 1, true))
      assert.truthy(H.errorOf(function() st:print(1, nil, 'x') end):find('stats:print: timeElapsed must be a number', 1, true))
      assert.truthy(H.errorOf(function() st:print(1, nil, nil, 'hdr') end):find('stats:print: header must be a list', 1, true))
      assert.truthy(H.errorOf(function() st.print(1) end):find('stats:print: call it as stats:print', 1, true))
      -- the error points at the caller's line, not into the package
      assert.truthy(H.errorOf(function() st:print() end):find('stats_spec.lua:%d+: stats:print'))

      local prefix = os.tmpname() .. '-'
      fill(st.training, 10, 5, 7); fill(st.testing, 10, 6, 5); st:update()
      fill(st.training, 10, 4, 7); fill(st.testing, 10, 5, 5); st:update()
      st:save(prefix)
      local back = snn.stats()
      assert.are.equal(3, back:load(prefix, nil, 2)) -- 2 rows // 2 * 2 + 1
      assert.truthy(H.errorOf(function() back:load(prefix, nil, 0) end):find('stats:load: modulo must be a positive whole number, got 0', 1, true))
      assert.truthy(H.errorOf(function() back:load(prefix, nil, 1.5) end):find('stats:load: modulo must be a whole number', 1, true))
      assert.truthy(H.errorOf(function() back:load(prefix, 'x') end):find('stats:load: numEpoch must be a whole number, got string', 1, true))
      assert.truthy(H.errorOf(function() back:load(prefix, -1) end):find('stats:load: numEpoch must not be negative', 1, true))
      os.remove(prefix .. 'loss.txt'); os.remove(prefix .. 'accuracy.txt')
   end)

   local read = H.readFile

   local function removeAll(files)
      for _, f in ipairs(files) do os.remove(f) end
   end

   it('draws a figure with nothing finite in it empty, with a note, instead of failing', function()
      -- no correct sample in any epoch (accuracy all missing), every loss NaN, then every loss inf
      for _, loss in ipairs({5, 0 / 0, 1 / 0}) do
         local st = snn.stats()
         for _ = 1, 2 do fill(st.training, 10, loss, 0); fill(st.testing, 10, loss, 0); st:update() end
         local prefix = os.tmpname() .. '-'
         local files = st:plot{path = prefix}
         assert.are.same({prefix .. 'loss.png', prefix .. 'loss.svg', prefix .. 'accuracy.png', prefix .. 'accuracy.svg'}, files)
         for _, f in ipairs(files) do
            assert.truthy(snn.utils.exists(f), f)
            assert.is_false(snn.utils.exists(f .. '.tmp'))
         end
         local note = 'nothing to plot: every value is missing, NaN or infinite'
         assert.truthy(read(prefix .. 'accuracy.svg'):find(note, 1, true))
         assert.are.equal(loss == 5, not read(prefix .. 'loss.svg'):find(note, 1, true))
         removeAll(files)
      end
   end)

   it('writes each figure as .png and .svg both or neither', function()
      local st = snn.stats()
      fill(st.training, 10, 5, 7); fill(st.testing, 10, 6, 5); st:update()
      local prefix = os.tmpname() .. '-'
      -- a folder where accuracy.svg goes: that figure fails whole, the loss figure is complete
      snn.utils.mkdir(prefix .. 'accuracy.svg')
      local keep = io.open(prefix .. 'accuracy.svg/keep', 'wb'); keep:close()
      local err = H.errorOf(function() st:plot{path = prefix} end)
      assert.truthy(err:find("stats:plot: cannot write '" .. prefix .. "accuracy.svg'", 1, true), err)
      assert.is_false(snn.utils.exists(prefix .. 'accuracy.png'))
      assert.is_false(snn.utils.exists(prefix .. 'accuracy.png.tmp'))
      assert.is_false(snn.utils.exists(prefix .. 'accuracy.svg.tmp'))
      assert.truthy(read(prefix .. 'loss.svg'):find('<svg', 1, true))
      os.remove(prefix .. 'accuracy.svg/keep'); os.remove(prefix .. 'accuracy.svg')
      removeAll({prefix .. 'loss.png', prefix .. 'loss.svg'})
      -- a missing folder: a clear error and nothing written
      err = H.errorOf(function() st:plot{path = prefix .. 'no-such-folder/'} end)
      assert.truthy(err:find("stats:plot: cannot write '" .. prefix .. "no-such-folder/loss.png'", 1, true), err)
   end)

   it('takes the reference\'s positional plot(figures, saveFig, path) and names an unknown option', function()
      local st = snn.stats()
      fill(st.training, 10, 2, 5); fill(st.testing, 10, 3, 4)
      st:update()
      local prefix = os.tmpname() .. '-'
      local files = st:plot({1, 2}, true, prefix)
      assert.are.same({prefix .. 'loss.png', prefix .. 'loss.svg', prefix .. 'accuracy.png', prefix .. 'accuracy.svg'},
         files)
      for _, f in ipairs(files) do
         assert.truthy(io.open(f, 'rb'), f)
         os.remove(f)
      end
      os.remove(prefix:sub(1, -2))
      local err = H.errorOf(function() st:plot{Path = prefix} end)
      assert.truthy(err:find("stats:plot: unknown option 'Path'", 1, true), err)
   end)

   it('keeps titles, series names and paths from reaching gnuplot as commands', function()
      local st = snn.stats()
      fill(st.training, 10, 5, 7); fill(st.testing, 10, 6, 5); st:update()
      fill(st.training, 10, 4, 8); fill(st.testing, 10, 5, 6); st:update()
      local prefix = os.tmpname() .. '-'
      local marker = prefix .. 'injected'
      local title = "x\nsystem 'touch " .. marker .. "'\n# `touch " .. marker .. "` it's a_b \\n \"q\" ''"
      local files = st:plot{path = prefix, title = title}
      assert.is_false(snn.utils.exists(marker))
      -- drawn as written (noenhanced), the control characters as spaces
      local svg = read(prefix .. 'loss.svg')
      assert.truthy(svg:find("x system 'touch " .. marker .. "' # `touch " .. marker .. "` it's a_b \\n \"q\" ''", 1, true))
      removeAll(files)

      local out = prefix .. 'lines'
      files = snn.plot.lines({{name = "`touch " .. marker .. "`'\n", values = {1, 2}}},
         {output = out, xlabel = "'\r\n`touch " .. marker .. "`", ylabel = '@x'})
      assert.is_false(snn.utils.exists(marker))
      assert.truthy(read(out .. '.svg'):find('`touch ' .. marker .. "`' ", 1, true))
      removeAll(files)

      local err = H.errorOf(function() st:plot{path = prefix .. "nl\nsystem 'touch " .. marker .. "'\n#"} end)
      assert.truthy(err:find("stats:plot: the output path '" .. prefix .. "nl\\10system", 1, true), err)
      assert.truthy(err:find('contains a control character', 1, true), err)
      assert.is_false(snn.utils.exists(marker))
      assert.is_false(snn.utils.exists(prefix .. 'nl'))
   end)

   it('checks the arguments of plot.lines and stats:plot', function()
      local series = {{name = 'a', values = {1, 2}}}
      assert.truthy(H.errorOf(function() snn.plot.lines(series, {}) end):find('plot.lines: expected an output path (a string), got nil', 1, true))
      assert.truthy(H.errorOf(function() snn.plot.lines(series) end):find('plot.lines: expected options', 1, true))
      assert.truthy(H.errorOf(function() snn.plot.lines(nil, {output = 'x'}) end):find('plot.lines: expected a list of series', 1, true))
      assert.truthy(H.errorOf(function() snn.plot.lines({{name = 'a', values = {1, 'x'}}}, {output = 'x'}) end)
         :find('plot.lines: series 1 value 2 is a string', 1, true))
      assert.truthy(H.errorOf(function() snn.plot.lines(series, {output = 'x', title = {}}) end):find('plot.lines: title must be a string', 1, true))
      local st = snn.stats()
      assert.truthy(H.errorOf(function() st:plot('x') end):find('stats:plot: expected options', 1, true))
      assert.truthy(H.errorOf(function() st:plot{path = 5} end):find('stats:plot: expected a path prefix (a string), got number', 1, true))
   end)
end)
