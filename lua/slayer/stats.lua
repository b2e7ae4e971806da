--[[
snn.stats -- learning statistics (the reference's learningStats, SPEC.md 17).

    local stats = snn.stats()
    stats.training.correctSamples = stats.training.correctSamples + nCorrect
    stats.training.numSamples     = stats.training.numSamples + n
    stats.training.lossSum        = stats.training.lossSum + loss
    stats:print(epoch, i, seconds)        -- redraws in a terminal, appends otherwise
    stats:update()                        -- end of epoch: logs, min/max, reset
    stats:save('run-')                    -- run-loss.txt, run-accuracy.txt
    stats:plot{path = 'run-'}             -- run-loss.png/.svg, run-accuracy.png/.svg

Values follow the reference: loss() is lossSum / numSamples, accuracy() is
correctSamples / numSamples, both nil when there is nothing to report
(accuracy also when no sample was correct).  Missing entries are stored as
`false` in lossLog/accuracyLog.  Unlike the reference, an update after an
epoch without accuracy does not crash.

Progress: set `stats.epochSamples = {train = n, test = m}` (or call
stats:setEpochSamples(n, m)) and print shows a bar, samples/s and the ETA
of the phase in progress.
]]
local L = require 'slayer.ffi'
local ffi = require 'ffi'
local nn = require 'slayer.nn'
local utils = require 'slayer.utils'
local T = require 'slayer.tensor'

ffi.cdef [[ int isatty(int fd); ]]

local Stat = nn.class('snn.learningStat')

function Stat:__init()
   self.lossSum, self.correctSamples, self.numSamples = 0, 0, 0
   self.minloss, self.maxAccuracy = nil, nil
   self.lossLog, self.accuracyLog = {}, {}
   self.bestLoss, self.bestAccuracy = false, false
end

function Stat:reset()
   self.lossSum, self.correctSamples, self.numSamples = 0, 0, 0
end

function Stat:loss()
   if self.numSamples > 0 then return self.lossSum / self.numSamples end
   return nil
end

function Stat:accuracy()
   if self.numSamples > 0 and self.correctSamples > 0 then return self.correctSamples / self.numSamples end
   return nil
end

function Stat:update()
   local l = self:loss()
   if l == nil then self.lossLog[#self.lossLog + 1] = false else self.lossLog[#self.lossLog + 1] = l end
   if l ~= nil then
      if self.minloss == nil then
         self.minloss = l
      elseif l < self.minloss then
         self.minloss, self.bestLoss = l, true
      else
         self.bestLoss = false
      end
   else
      self.bestLoss = false -- no loss (the reference raises): not the best epoch
   end
   local a = self:accuracy()
   if a == nil then self.accuracyLog[#self.accuracyLog + 1] = false else self.accuracyLog[#self.accuracyLog + 1] = a end
   if a ~= nil then
      if self.maxAccuracy == nil then
         self.maxAccuracy = a
      elseif a > self.maxAccuracy then
         self.maxAccuracy, self.bestAccuracy = a, true
      else
         self.bestAccuracy = false
      end
   else
      self.bestAccuracy = false
   end
end

function Stat:displayString()
   local loss, acc, minloss, maxAcc = self:loss(), self:accuracy(), self.minloss, self.maxAccuracy
   if loss == nil then return nil end
   if acc == nil then
      if minloss == nil then return string.format('loss = %-11.5g', loss) end
      return string.format('loss = %-11.5g (min = %-11.5g)', loss, minloss)
   end
   if minloss == nil and maxAcc == nil then
      return string.format('loss = %-11.5g        %-11s     accuracy = %-8.5g        %-8s ', loss, ' ', acc, ' ')
   end
   return string.format('loss = %-11.5g (min = %-11.5g)    accuracy = %-8.5g (max = %-8.5g)', loss,
      minloss or loss, acc, maxAcc or acc)
end

-- print(stats.training) in the REPL
function Stat:__tostring()
   local loss, acc, parts = self:loss(), self:accuracy(), {}
   if loss ~= nil then parts[1] = string.format('loss %.6g', loss) end
   if acc ~= nil then parts[#parts + 1] = string.format('accuracy %.6g', acc) end
   local text = #parts > 0 and (table.concat(parts, ', ') .. ' over ' .. self.numSamples .. ' samples this epoch')
      or 'no samples this epoch'
   local n, best = #self.lossLog, {}
   if self.minloss ~= nil then best[#best + 1] = string.format('min loss %.6g', self.minloss) end
   if self.maxAccuracy ~= nil then best[#best + 1] = string.format('max accuracy %.6g', self.maxAccuracy) end
   text = text .. string.format('; %d epoch%s logged', n, n == 1 and '' or 's')
   return #best > 0 and (text .. ' (' .. table.concat(best, ', ') .. ')') or text
end

local Stats = nn.class('snn.learningStats')

function Stats:__tostring()
   return 'snn.stats\n  training: ' .. tostring(self.training) .. '\n  testing:  ' .. tostring(self.testing)
end

-- epochSamples: nil, or {train = n, test = m} with whole numbers (or nil)
local function checkEpochSamples(fname, train, test)
   for _, v in ipairs({{'train', train}, {'test', test}}) do
      if v[2] ~= nil and not L.isWhole(v[2], 0, 2 ^ 53) then
         L.raise(fname .. ': expected ' .. v[1] .. ' samples per epoch as a whole number, got '
            .. (type(v[2]) == 'number' and tostring(v[2]) or type(v[2])))
      end
   end
end

function Stats:__init(opts)
   opts = opts or {}
   if type(opts) ~= 'table' then L.raise('stats: expected an options table {epochSamples =, out =, tty =}, got ' .. type(opts)) end
   if opts.epochSamples ~= nil then
      if type(opts.epochSamples) ~= 'table' then
         L.raise('stats: expected epochSamples as {train = n, test = m}, got ' .. type(opts.epochSamples))
      end
      checkEpochSamples('stats', opts.epochSamples.train, opts.epochSamples.test)
   end
   self.linesPrinted = 0
   self.training = Stat()
   self.testing = Stat()
   self.epochSamples = opts.epochSamples
   self.out = opts.out or io.stdout
   if opts.tty ~= nil then self.tty = opts.tty else self.tty = self.out == io.stdout and ffi.C.isatty(1) == 1 end
end

Stats.Stat = Stat

function Stats:setEpochSamples(train, test)
   checkEpochSamples('setEpochSamples', train, test)
   self.epochSamples = {train = train, test = test}
end

function Stats:update()
   self.training:update()
   self.training:reset()
   self.testing:update()
   self.testing:reset()
end

local function clock(sec)
   if sec ~= sec or sec >= 3.6e9 then return '?:??:??' end -- unknown, or over a million hours
   sec = math.max(0, math.floor(sec + 0.5))
   return string.format('%d:%02d:%02d', math.floor(sec / 3600), math.floor(sec / 60) % 60, sec % 60)
end

local function progressLine(self, timeElapsed)
   local es = self.epochSamples
   if not es or not timeElapsed or not (timeElapsed > 0 and timeElapsed < math.huge) then return nil end
   local phase, done, total
   if self.testing.numSamples > 0 and es.test then
      phase, done, total = 'test ', self.testing.numSamples, es.test
   elseif es.train then
      phase, done, total = 'train', self.training.numSamples, es.train
   end
   if not total or total <= 0 or done >= total then return nil end
   local frac = math.min(1, done / total)
   local width = 30
   local filled = math.floor(frac * width + 0.5)
   local rate = done / timeElapsed
   local eta = rate > 0 and (total - done) / rate or 0
   return string.format('%s [%s%s] %3d%% %8s samples/s  ETA %s', phase, string.rep('=', filled),
      string.rep(' ', width - filled), math.floor(frac * 100 + 0.5),
      string.format(rate < 1e7 and '%.1f' or '%.3g', rate), clock(eta))
end

local function wholeNumber(v, fname, what)
   if type(v) ~= 'number' or v ~= v or v == math.huge or v == -math.huge or v ~= math.floor(v) then
      L.raise(fname .. ': ' .. what .. ' must be a whole number, got ' .. (type(v) == 'number' and tostring(v) or type(v)))
   end
end

--- Print the statistics of the session in progress: an epoch line
-- ('Epoch : %10d(i = %7d), %12.4f ms elapsed' as the reference), training
-- and testing displays, an optional progress bar, and header/footer lines.
-- In a terminal the same lines are redrawn; elsewhere they are appended.
function Stats:print(epoch, iter, timeElapsed, header, footer)
   if type(self) ~= 'table' or type(self.training) ~= 'table' or type(self.testing) ~= 'table' then
      L.raise('stats:print: call it as stats:print(epoch, ...), on learning statistics from snn.stats()')
   end
   wholeNumber(epoch, 'stats:print', 'epoch')
   if iter ~= nil then wholeNumber(iter, 'stats:print', 'iter') end
   if timeElapsed ~= nil and type(timeElapsed) ~= 'number' then
      L.raise('stats:print: timeElapsed must be a number of seconds, got ' .. type(timeElapsed))
   end
   if header ~= nil and type(header) ~= 'table' then L.raise('stats:print: header must be a list of lines, got ' .. type(header)) end
   if footer ~= nil and type(footer) ~= 'table' then L.raise('stats:print: footer must be a list of lines, got ' .. type(footer)) end
   local lines = {}
   for _, h in ipairs(header or {}) do lines[#lines + 1] = tostring(h) end
   -- %.0f, not %d: a whole number past 2^63 would wrap in %d
   local s = string.format('Epoch : %10.0f', epoch)
   if iter ~= nil then s = s .. string.format('(i = %7.0f)', iter) end
   if timeElapsed ~= nil then s = s .. string.format(', %12.4f ms elapsed', timeElapsed * 1000) end
   lines[#lines + 1] = s
   lines[#lines + 1] = self.training:displayString() or 'None'
   local test = self.testing:displayString()
   if test then lines[#lines + 1] = test end
   local bar = progressLine(self, timeElapsed)
   if bar then lines[#lines + 1] = bar end
   for _, f in ipairs(footer or {}) do lines[#lines + 1] = tostring(f) end
   local out = self.out
   if self.tty then
      if self.linesPrinted > 0 then out:write(string.format('\27[%dA', self.linesPrinted)) end
      for _, l in ipairs(lines) do out:write('\27[2K', l, '\n') end
      self.linesPrinted = #lines
   else
      for _, l in ipairs(lines) do out:write(l, '\n') end
   end
   out:flush()
end

--- Start a fresh block of lines (the next print does not overwrite this one).
function Stats:newline()
   self.linesPrinted = 0
end

local function fmt(v) return string.format('%12.6g', v) end

--- Write prefix..'loss.txt' and prefix..'accuracy.txt' in the reference's
-- layout (CRLF line ends, '%12.6g %12.6g ' rows, missing testing accuracy
-- written as 0, accuracy rows only when some training accuracy exists).
function Stats:save(prefix)
   prefix = prefix or ''
   if type(prefix) ~= 'string' then L.raise('stats:save: expected a path prefix (a string), got ' .. type(prefix)) end
   local tr, te = self.training, self.testing
   if #te.lossLog ~= #tr.lossLog then
      L.raise('stats:save: training has ' .. #tr.lossLog .. ' epochs of loss, testing ' .. #te.lossLog)
   end
   local header = string.format('#%11s %11s\r\n', 'Train', 'Test')
   local rows = {header}
   for i = 1, #tr.lossLog do
      local a, b = tr.lossLog[i], te.lossLog[i]
      if a == false or b == false then
         L.raise('stats:save: epoch ' .. i .. ' has no loss (' .. (a == false and 'training' or 'testing') .. ')')
      end
      rows[#rows + 1] = fmt(a) .. ' ' .. fmt(b) .. ' \r\n'
   end
   local loss = table.concat(rows)
   rows = {header}
   local any = false
   for _, v in ipairs(tr.accuracyLog) do if v ~= false then any = true end end
   if any then
      for i = 1, #tr.accuracyLog do
         local a, b = tr.accuracyLog[i], te.accuracyLog[i]
         rows[#rows + 1] = fmt(a or 0) .. ' ' .. fmt(b or 0) .. ' \r\n'
      end
   end
   -- both or neither, so the two files never disagree on the epochs
   utils.writeFiles({{prefix .. 'loss.txt', loss}, {prefix .. 'accuracy.txt', table.concat(rows)}}, 'stats:save')
end

local function readTable(path)
   local f, err = io.open(path, 'rb')
   if not f then L.raise('stats:load: cannot open ' .. path .. ' (' .. tostring(err) .. ')') end
   local rows = {}
   local lineNo = 0
   for line in f:lines() do
      lineNo = lineNo + 1
      line = line:gsub('\r$', '')
      if not line:match('^%s*#') and line:match('%S') then
         local a, b = line:match('^%s*(%S+)%s+(%S+)')
         a, b = tonumber(a), tonumber(b)
         if not a or not b then
            f:close()
            L.raise('stats:load: ' .. path .. ' line ' .. lineNo .. ' is not two numbers')
         end
         rows[#rows + 1] = {a, b}
      end
   end
   f:close()
   return rows
end

--- Restore logs written by save.  Keeps the first numEpoch rows (default
-- rows // modulo * modulo + 1, as the reference) and returns that number,
-- which is the epoch to resume from.
function Stats:load(prefix, numEpoch, modulo)
   prefix, modulo = prefix or '', modulo or 1
   if type(prefix) ~= 'string' then L.raise('stats:load: expected a path prefix (a string), got ' .. type(prefix)) end
   wholeNumber(modulo, 'stats:load', 'modulo')
   if modulo < 1 then L.raise('stats:load: modulo must be a positive whole number, got ' .. modulo) end
   if numEpoch ~= nil then
      wholeNumber(numEpoch, 'stats:load', 'numEpoch')
      if numEpoch < 0 then L.raise('stats:load: numEpoch must not be negative, got ' .. numEpoch) end
   end
   local loss = readTable(prefix .. 'loss.txt')
   local acc = readTable(prefix .. 'accuracy.txt')
   local n = numEpoch or (math.floor(#loss / modulo) * modulo + 1)
   local function column(rows, c, k)
      local out = {}
      for i = 1, math.min(k, #rows) do out[i] = rows[i][c] end
      return out
   end
   local function minmax(list, want)
      local v
      for _, x in ipairs(list) do
         if v == nil or (want == 'min' and x < v) or (want == 'max' and x > v) then v = x end
      end
      return v
   end
   self.training.lossLog, self.testing.lossLog = column(loss, 1, n), column(loss, 2, n)
   self.training.minloss, self.testing.minloss = minmax(self.training.lossLog, 'min'), minmax(self.testing.lossLog, 'min')
   self.training.accuracyLog, self.testing.accuracyLog = column(acc, 1, n), column(acc, 2, n)
   self.training.maxAccuracy = minmax(self.training.accuracyLog, 'max')
   self.testing.maxAccuracy = minmax(self.testing.accuracyLog, 'max')
   return n
end

--- Loss (log scale) and accuracy curves through gnuplot: writes
-- path..'loss.png', path..'accuracy.png' and the .svg twins, each figure's
-- two files all or none, and returns the list of the four files.  A figure
-- with nothing finite to draw (no epochs, accuracy never above 0, every
-- loss NaN or infinite) is drawn empty with a note, so the four files are
-- always there after a successful call.  opts: path (prefix), title; or
-- the reference's positional plot(figures, saveFig, path), whose figure
-- numbers are ignored and whose files are written whatever saveFig says
-- (there is no display to show them on instead).
function Stats:plot(opts, saveFig, path)
   if opts == nil and (saveFig ~= nil or path ~= nil) then opts = {} end
   opts = opts or {}
   if type(opts) ~= 'table' or T.isTensor(opts) then
      L.raise('stats:plot: expected options {path =, title =}, got ' .. T.typeName(opts))
   end
   if opts[1] ~= nil or saveFig ~= nil or path ~= nil then
      opts = {path = path} -- positional: (figures, saveFig, path)
   else
      for k in pairs(opts) do
         if k ~= 'path' and k ~= 'title' and k ~= 'saveFig' and k ~= 'figures' then
            L.raise("stats:plot: unknown option '" .. tostring(k) .. "' (expected path, title)")
         end
      end
   end
   path = opts.path or ''
   if type(path) ~= 'string' then L.raise('stats:plot: expected a path prefix (a string), got ' .. type(path)) end
   local files = require('slayer.plot').learningCurves(self, path, opts.title, 'stats:plot')
   return files
end

return setmetatable({learningStat = Stat, learningStats = Stats}, {
   __call = function(_, opts) return Stats(opts) end,
})
