-- snn.io: events, spike files, binning, IDX, saccades, pictures (SPEC.md 16)
local snn = require 'slayer'
local ffi = require 'ffi'
local H = require 'support.helpers'
local T = snn.tensor
local sio = snn.io

local DATA = assert(H.dataDir(), 'shared data not found: run from the checkout next to ../shared or set SLAYER_DATA')
local SIO = DATA .. '/spike-io/'

local function bytes(path)
   local f = assert(io.open(path, 'rb'))
   local s = f:read('*a')
   f:close()
   return s
end

local function tmp(ext) return os.tmpname() .. ext end

describe('events', function()
   it('stores 0-based FFI arrays and shifts polarities to start at 0 without touching the caller', function()
      local p = {1, 2, 1}
      local ev = sio.event({1, 2, 3}, nil, p, {0.5, 1.5, 2.5})
      assert.are.equal(3, ev.n)
      assert.are.equal(1, ev.dim)
      assert.are.equal(2, ev.x[1])
      assert.are.equal(0, ev.p[0])
      assert.are.equal(1, ev.p[1])
      assert.are.same({1, 2, 1}, p)
      assert.is_nil(ev.y)
      local ev2 = sio.event({1.7, -1.2}, {3, 4}, {0, 1}, {1, 2})
      assert.are.equal(2, ev2.dim)
      assert.are.equal(1, ev2.x[0])   -- truncated, as numpy astype(int)
      assert.are.equal(-1, ev2.x[1])
      assert.has_error(function() sio.event({}, nil, {}, {}) end)
      assert.has_error(function() sio.event({1, 2}, nil, {1}, {1, 2}) end)
   end)

   it('bins hand-computed cases: rounding half to even, 1/Ts, dropped events, OR/SUM/COUNT', function()
      -- times 0.5 -> bin 0, 1.5 -> 2, 2.5 -> 2 (half to even), 3.4 -> 3; x 5 is out of range
      local ev = sio.event({0, 1, 1, 2, 5, 1}, {0, 0, 0, 1, 0, 0}, {0, 1, 1, 0, 0, 1}, {0.5, 1.5, 2.5, 3.4, 1, 99})
      local s = ev:toSpikeTensor(T.zeros({2, 2, 3, 4}), 1)
      local v = s:totable()
      local function at(p, y, x, t) return v[((p * 2 + y) * 3 + x) * 4 + t + 1] end
      assert.are.equal(1, at(0, 0, 0, 0))
      assert.are.equal(1, at(1, 0, 1, 2)) -- two events in one bin: OR
      assert.are.equal(1, at(0, 1, 2, 3))
      assert.are.equal(3, s:countNonzero())
      local s2 = ev:toSpikeTensor(T.zeros({2, 2, 3, 4}), 1, false, 'sum')
      assert.are.equal(1, s2:totable()[((1 * 2 + 0) * 3 + 1) * 4 + 3]) -- the reference's SUM does not accumulate
      local s3 = ev:toSpikeTensor(T.zeros({2, 2, 3, 4}), 1, false, 'COUNT')
      assert.are.equal(2, s3:totable()[((1 * 2 + 0) * 3 + 1) * 4 + 3])
      local s4 = ev:toSpikeTensor(T.zeros({2, 2, 3, 8}), 0.5)
      assert.are.equal(2, s4:max())                                     -- 1/Ts
      -- the reference's SUM is numpy's a[idx] += 1/Ts: each bin an event hits
      -- gets the value it held before plus 1/Ts, once however many events hit it
      local s5 = ev:toSpikeTensor(T.full({2, 2, 3, 4}, 0.25), 1, false, 'SUM'):totable()
      assert.are.equal(1.25, s5[((1 * 2 + 0) * 3 + 1) * 4 + 3]) -- two events
      assert.are.equal(1.25, s5[((0 * 2 + 0) * 3 + 0) * 4 + 1]) -- one event
      assert.are.equal(0.25, s5[((0 * 2 + 0) * 3 + 0) * 4 + 2]) -- none
      local s6 = ev:toSpikeTensor(T.full({2, 2, 3, 4}, 0.25), 1, false, 'OR'):totable()
      assert.are.equal(1, s6[((1 * 2 + 0) * 3 + 1) * 4 + 3])
      local s7 = ev:toSpikeTensor(T.full({2, 2, 3, 4}, 0.25), 1, false, 'COUNT'):totable()
      assert.are.equal(2.25, s7[((1 * 2 + 0) * 3 + 1) * 4 + 3])
      assert.has_error(function() ev:toSpikeTensor(T.zeros({2, 2, 3, 4}), 1, false, 'MAX') end)
      assert.has_error(function() ev:toSpikeTensor(T.zeros({2, 3, 4}), 1) end)
   end)

   it('converts between spike arrays and events', function()
      local a = T.zeros({2, 3, 5})
      a:select(1, 2):select(1, 3):narrow(1, 4, 1):fill(1)
      a:select(1, 1):select(1, 1):narrow(1, 1, 1):fill(1)
      local ev = sio.spikeArrayToEvent(a, 2)
      assert.are.equal(2, ev.n)
      assert.are.same({0, 2}, {ev.x[0], ev.x[1]})
      assert.are.same({0, 1}, {ev.p[0], ev.p[1]})
      assert.are.same({0, 6}, {ev.t[0], ev.t[1]})
      local back = ev:toSpikeArray(2, {2, 3, 5})
      assert.are.equal(0, T.maxAbsDiff(back, a * 0.5))
      assert.are.same({2, 3, 4}, ev:toSpikeArray(2):shape())
      -- the default size is numpy's round(max t / Ts + 1), half to even:
      -- t max 1.5 ms at Ts 1 gives round(2.5) = 2 bins, so that event (bin 2) is dropped
      local e2 = sio.event({0, 1}, nil, {0, 0}, {0.2, 1.5})
      local s = e2:toSpikeArray(1)
      assert.are.same({1, 2, 2}, s:shape())
      assert.are.equal(1, s:countNonzero())
      assert.are.same({1, 2, 4}, sio.event({0, 1}, nil, {0, 0}, {0.2, 2.5}):toSpikeArray(1):shape()) -- round(3.5)
   end)

   it('shifts randomly only within the reference bound and deterministically for a seed', function()
      local ev = sio.read2Dspikes(SIO .. 'NMNIST_1.bs2')
      snn.manualSeed(5)
      local a = ev:toSpikeTensor(T.zeros({2, 34, 34, 350}), 1, true)
      snn.manualSeed(5)
      local b = ev:toSpikeTensor(T.zeros({2, 34, 34, 350}), 1, true)
      assert.are.equal(0, T.maxAbsDiff(a, b))
   end)

   it('draws the random shift below max(tmin/Ts, tmax/Ts - T, T - tmax/Ts, 1), the tmin term included', function()
      -- two 1-D events, neuron 0 at 60 ms and neuron 1 at 90 ms, binned at Ts = 1 into T = 100 bins:
      -- the bound is max(60, 90 - 100, 100 - 90, 1) = 60, so the shift tSt takes 0 .. 59; without the
      -- tmin term it would be 10.  Events land in bin round(t / Ts) - tSt: neuron 0's in 1 .. 60
      local ev = sio.event({0, 1}, nil, {0, 0}, {60, 90})
      local Tn = 100
      local bound = math.max(60, 90 - Tn, Tn - 90, 1)
      snn.manualSeed(16)
      local lo, hi = math.huge, -math.huge
      for _ = 1, 300 do
         local v = ev:toSpikeTensor(T.zeros({1, 1, 2, Tn}), 1, true):totable()
         local bin0, bin1
         for t = 0, Tn - 1 do
            if v[t + 1] ~= 0 then bin0 = t end
            if v[Tn + t + 1] ~= 0 then bin1 = t end
         end
         local shift = 60 - bin0
         assert.are.equal(90 - shift, bin1) -- one shift for all events
         lo, hi = math.min(lo, shift), math.max(hi, shift)
      end
      assert.is_true(lo >= 0 and hi <= bound - 1, lo .. '..' .. hi)
      -- 300 uniform draws from 0 .. 59 reach both ends of the range
      assert.is_true(lo <= 3 and hi >= bound - 4, lo .. '..' .. hi)
   end)

   it('refuses coordinates no int32 holds, non-finite times and a bad count n, naming the value', function()
      local function err(...)
         local ok, e = pcall(sio.event, ...)
         assert.is_false(ok, 'expected an error')
         assert.truthy(e:find('event: ', 1, true), e)
         return e
      end
      -- these used to become -2147483648 silently
      assert.truthy(err({0 / 0}, {1}, {0}, {1}):find('x[1] = nan', 1, true))
      assert.truthy(err({1}, {1 / 0}, {0}, {1}):find('y[1] = inf', 1, true))
      assert.truthy(err({1, 1e10}, nil, {0, 1}, {1, 2}):find('x[2] = 10000000000', 1, true))
      assert.truthy(err({1}, {1}, {0}, {0 / 0}):find('t[1] = nan', 1, true))
      for _, n in ipairs({-5, 0 / 0, 1.5, 0}) do
         assert.truthy(err({1, 2}, {1, 2}, {0, 1}, {1, 2}, n):find('n must be a positive whole number', 1, true))
      end
      -- FFI arrays shorter than n (this read past their end)
      local a, d = ffi.new('int32_t[1]', {1}), ffi.new('double[1]', {1})
      assert.truthy(err(a, a, a, d, 1000000):find('n = 1000000 but x holds 1 values', 1, true))
      local b = ffi.new('int32_t[?]', 3, {1, 2, 3})
      assert.truthy(err(b, b, b, ffi.new('double[?]', 2), 3):find('t holds 2 values', 1, true))
      -- arrays long enough, and a pointer (whose length the caller vouches for), are fine
      local ev = sio.event(b, b, b, ffi.new('double[3]', {1, 2, 3}), 3)
      assert.are.same({3, 2}, {ev.n, ev.p[2]})
      assert.are.equal(2, sio.event(ffi.cast('int32_t *', b), nil, b, ffi.new('double[3]'), 2).n)
   end)
end)

describe('spike files', function()
   it('reproduces the N-MNIST sample counts of SPEC 16.3 and round-trips bs2 byte for byte', function()
      local ev = sio.read2Dspikes(SIO .. 'NMNIST_1.bs2')
      assert.are.equal(4681, ev.n)
      assert.are.equal(0.893, ev.t[0])
      assert.are.equal(4670, ev:toSpikeTensor(T.zeros({2, 34, 34, 300}), 1):countNonzero())
      local out = tmp('.bs2')
      sio.encode2Dspikes(out, ev)
      assert.is_true(bytes(out) == bytes(SIO .. 'NMNIST_1.bs2'))
      for _, name in ipairs({'Copy.bs2', '1.bs2', '7.bs2'}) do
         sio.encode2Dspikes(out, sio.read2Dspikes(SIO .. name))
         assert.is_true(bytes(out) == bytes(SIO .. name), name)
      end
      os.remove(out)
   end)

   it('round-trips bs1 (polarity shifted as the reference: NTIDIGITS -> Copy.bs1), bs3 and bsn', function()
      local out = tmp('.bs1')
      local ev = sio.read1Dspikes(SIO .. 'NTIDIGITS_1.bs1')
      assert.are.equal(898, ev.n)
      sio.encode1Dspikes(out, ev)
      assert.is_true(bytes(out) == bytes(SIO .. 'Copy.bs1'))
      sio.encode1Dspikes(out, sio.read1Dspikes(SIO .. 'Copy.bs1'))
      assert.is_true(bytes(out) == bytes(SIO .. 'Copy.bs1'))
      for _, k in ipairs({1, 4, 10}) do
         local e3 = sio.read3Dspikes(SIO .. k .. '.bs3')
         sio.encode3Dspikes(out, e3)
         assert.is_true(bytes(out) == bytes(SIO .. k .. '.bs3'), k .. '.bs3')
         -- bs3 holds the same events as the bs2 recording (reference test spikeIO002)
         local e2 = sio.read2Dspikes(SIO .. k .. '.bs2')
         assert.are.equal(e2.n, e3.n)
         assert.are.same({e2.x[e2.n - 1], e2.y[e2.n - 1], e2.t[e2.n - 1]}, {e3.x[e3.n - 1], e3.y[e3.n - 1], e3.t[e3.n - 1]})
      end
      local id, ts, te, cnt, n = sio.read1DnumSpikes(SIO .. 'Out_0.bsn')
      assert.are.equal(10, n)
      assert.are.same({0, 0, 300, 60}, {id[0], ts[0], te[0], cnt[0]})
      assert.are.same({9, 10}, {id[9], cnt[9]})
      sio.encode1DnumSpikes(out, id, ts, te, cnt, n)
      assert.is_true(bytes(out) == bytes(SIO .. 'Out_0.bsn'))
      os.remove(out)
   end)

   it('fixes the reference encoder bugs for bs1 ids and bs3 y >= 256', function()
      local out = tmp('.bs1')
      sio.encode1Dspikes(out, sio.event({300, 1000}, nil, {0, 1}, {1, 2}))
      local back = sio.read1Dspikes(out)
      assert.are.same({300, 1000}, {back.x[0], back.x[1]})
      sio.encode3Dspikes(out, sio.event({5, 4000}, {300, 4095}, {0, 7}, {1, 2}))
      local b3 = sio.read3Dspikes(out)
      assert.are.same({300, 4095, 4000, 7}, {b3.y[0], b3.y[1], b3.x[1], b3.p[1]})
      os.remove(out)
   end)

   it('names the file and byte offset of a truncated file, refuses out-of-range values, writes atomically', function()
      local bad = tmp('.bs2')
      local f = io.open(bad, 'wb')
      f:write(bytes(SIO .. 'NMNIST_1.bs2'):sub(1, 5 * 10 + 3))
      f:close()
      local ok, err = pcall(sio.read2Dspikes, bad)
      assert.is_false(ok)
      assert.truthy(err:find('read2Dspikes') and err:find(bad, 1, true) and err:find('byte 50'), err)
      ok, err = pcall(sio.read2Dspikes, '/nonexistent/x.bs2')
      assert.truthy(err:find('cannot open'))
      local out = tmp('.bs2')
      ok, err = pcall(sio.encode2Dspikes, out, sio.event({300}, {1}, {0}, {1}))
      assert.is_false(ok)
      assert.truthy(err:find('encode2Dspikes') and err:find('x = 300'))
      ok, err = pcall(sio.encode2Dspikes, out, sio.event({3}, {1}, {0}, {9000}))
      assert.truthy(err:find('t %(us%)'))
      assert.is_nil(io.open(out, 'rb'))
      assert.is_nil(io.open(out .. '.tmp', 'rb'))
      ok, err = pcall(sio.encode2Dspikes, '/nonexistent-dir/a.bs2', sio.event({3}, {1}, {0}, {1}))
      assert.truthy(err:find('cannot open'))
      os.remove(bad)
   end)

   it('reads the Oxford task files (SPEC 16.3: 1,881 and 10,355 non-zeros)', function()
      local inp = sio.read1Dspikes(DATA .. '/oxford/input.bs1')
      local outp = sio.read1Dspikes(DATA .. '/oxford/output.bs1')
      assert.are.same({1889, 10361}, {inp.n, outp.n})
      assert.are.equal(1881, inp:toSpikeTensor(T.zeros({1, 1, 200, 1900}), 1):countNonzero())
      assert.are.equal(10355, outp:toSpikeTensor(T.zeros({1, 1, 200, 1900}), 1):countNonzero())
   end)

   it('writes and reads NumPy event arrays', function()
      local ev = sio.read2Dspikes(SIO .. 'NMNIST_1.bs2')
      local out = tmp('.npy')
      sio.encodeNpSpikes(out, ev)
      local raw = bytes(out)
      assert.are.equal('\147NUMPY\1\0', raw:sub(1, 8))
      assert.truthy(raw:find("{'descr': '<f8', 'fortran_order': False, 'shape': (4681, 4), }", 1, true))
      assert.are.equal(0, (10 + raw:byte(9) + 256 * raw:byte(10)) % 64)
      assert.are.equal(10 + raw:byte(9) + 256 * raw:byte(10) + 4681 * 4 * 8, #raw)
      local back = sio.readNpSpikes(out)
      assert.are.equal(4681, back.n)
      for _, i in ipairs({0, 1000, 4680}) do
         assert.are.same({ev.x[i], ev.y[i], ev.p[i], ev.t[i]}, {back.x[i], back.y[i], back.p[i], back.t[i]})
      end
      local e1 = sio.event({1, 2}, nil, {0, 1}, {3, 4})
      sio.encodeNpSpikes(out, e1)
      local b1 = sio.readNpSpikes(out, 'xypt', 1e-3)
      assert.are.same({1, 2, 1, 4}, {b1.x[0], b1.x[1], b1.p[1], b1.t[1]})
      local f = io.open(out, 'wb')
      f:write(raw:sub(1, 200))
      f:close()
      local ok, err = pcall(sio.readNpSpikes, out)
      assert.is_false(ok)
      assert.truthy(err:find('truncated'))
      os.remove(out)
   end)

   -- a version 1.0 .npy file: header dict padded to 64 bytes, then data
   local function npy(path, descr, shape, data)
      local hdr = "{'descr': '" .. descr .. "', 'fortran_order': False, 'shape': " .. shape .. ', }'
      hdr = hdr .. string.rep(' ', (64 - (10 + #hdr + 1) % 64) % 64) .. '\n'
      local f = assert(io.open(path, 'wb'))
      f:write('\147NUMPY\1\0', string.char(#hdr % 256, math.floor(#hdr / 256)), hdr, data or '')
      f:close()
   end
   local function f8(...)
      local v = {...}
      return ffi.string(ffi.new('double[?]', #v, v), 8 * #v)
   end

   it('refuses .npy headers whose shape overflows, is not 2-D, or needs more data than the file has', function()
      local path = tmp('.npy')
      -- 2^62 x 4 float64: the size in bytes wraps to 0 (this crashed)
      for _, c in ipairs({{'<f8', '(4611686018427387904, 4)'}, {'<f8', '(2305843009213693952, 4)'},
                          {'|u1', '(4611686018427387904, 4)'}, {'<f8', '(99999999999999999999, 4)'}}) do
         npy(path, c[1], c[2], f8(1, 2, 3, 4, 5, 6, 7, 8))
         local ok, err = pcall(sio.readNpSpikes, path)
         assert.is_false(ok)
         assert.truthy(err:find('readNpSpikes: ', 1, true) and (err:find('truncated') or err:find('2-D')), err)
      end
      -- rank 3 used to be read as its first two dimensions
      npy(path, '<f8', '(2, 3, 4)', f8(unpack({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
         21, 22, 23, 24})))
      local ok, err = pcall(sio.readNpSpikes, path)
      assert.is_false(ok)
      assert.truthy(err:find('2-D') and err:find('(2, 3, 4)', 1, true), err)
      npy(path, '<f8', '(2, 4)', f8(1, 2, 1, 10, 3, 4, 0, 20))
      local ev = sio.readNpSpikes(path)
      assert.are.same({2, 3, 4, 0, 20}, {ev.n, ev.x[1], ev.y[1], ev.p[1], ev.t[1]})
      os.remove(path)
   end)

   it('refuses NaN, inf and out-of-range event values in a .npy file, naming the event', function()
      local path = tmp('.npy')
      for _, c in ipairs({{f8(1, 2, 1, 10, 0 / 0, 4, 0, 20), 'event 2 (row 1) has x = nan'},
                          {f8(1, 1 / 0, 1, 10), 'event 1 (row 0) has y = inf'},
                          {f8(1, 2, -3e9, 10), 'event 1 (row 0) has p = -3000000000'},
                          {f8(1, 2, 1, 0 / 0), 'event 1 (row 0) has t = nan'},
                          -- NaNs with payloads: Debian's LuaJIT read these as other types (a crash)
                          {f8(1, 2, 1, 10) .. string.rep('\255', 8) .. f8(2, 1, 20), 'event 2 (row 1) has x = nan'},
                          {f8(1, 2, 1) .. '\1\0\0\0\0\0\248\255', 'event 1 (row 0) has t = nan'},
                          {f8(1, 2, 1) .. '\1\0\0\0\0\0\244\255', 'event 1 (row 0) has t = nan'}}) do
         npy(path, '<f8', '(' .. (#c[1] / 32) .. ', 4)', c[1])
         local ok, err = pcall(sio.readNpSpikes, path)
         assert.is_false(ok)
         assert.truthy(err:find('readNpSpikes: ', 1, true) and err:find(c[2], 1, true), err)
      end
      os.remove(path)
   end)

   it('names the function and the problem for a missing path, a directory or a bad timeUnit', function()
      local function err(f, ...)
         local ok, e = pcall(f, ...)
         assert.is_false(ok)
         return e
      end
      assert.truthy(err(sio.readNpSpikes, nil):find('readNpSpikes: expected a file path, got nil', 1, true))
      assert.truthy(err(sio.readNpSpikes, '/tmp'):find("readNpSpikes: '/tmp' is a directory", 1, true))
      assert.truthy(err(sio.read3Dspikes, '/tmp'):find("read3Dspikes: '/tmp' is a directory", 1, true))
      assert.truthy(err(sio.readIdx, '/tmp'):find("readIdx: '/tmp' is a directory", 1, true))
      assert.truthy(err(sio.readNpSpikes, SIO .. 'NMNIST_1.bs2', 'xypt', 'x'):find('timeUnit', 1, true))
      -- encodeNpSpikes ignores timeUnit, as the reference, but not a wrong one
      local e2, out = sio.event({1, 2}, {1, 2}, {0, 1}, {1, 20}), tmp('.npy')
      for _, bad in ipairs({'x', 0, -1e-3, 0 / 0, 1 / 0}) do
         assert.truthy(err(sio.encodeNpSpikes, out, e2, 'xypt', bad)
            :find('encodeNpSpikes: timeUnit must be a positive number of seconds, got', 1, true))
      end
      sio.encodeNpSpikes(out, e2, 'xypt', 1e-6)
      assert.are.same({20, 20}, {sio.readNpSpikes(out).t[1], sio.readNpSpikes(out, 'xypt', 1e-3).t[1]})
      -- versions other than 1.0, 2.0 and 3.0 (NumPy reads no others)
      local raw = bytes(out)
      for _, v in ipairs({'\1\1', '\2\5', '\4\0'}) do
         local f = assert(io.open(out, 'wb'))
         f:write(raw:sub(1, 6), v, raw:sub(9))
         f:close()
         assert.truthy(err(sio.readNpSpikes, out):find('has unsupported .npy version', 1, true))
      end
      os.remove(out)
   end)

   it('checks the output path of every encoder before writing (nil used to crash)', function()
      local e1, e2 = sio.event({1, 2}, nil, {0, 1}, {1, 20}), sio.event({1, 2}, {1, 2}, {0, 1}, {1, 20})
      local calls = {
         {'encode1Dspikes', function(p) sio.encode1Dspikes(p, e1) end},
         {'encode2Dspikes', function(p) sio.encode2Dspikes(p, e2) end},
         {'encode3Dspikes', function(p) sio.encode3Dspikes(p, e2) end},
         {'encodeNpSpikes', function(p) sio.encodeNpSpikes(p, e2) end},
         {'encode1DnumSpikes', function(p) sio.encode1DnumSpikes(p, {1}, {1}, {2}, {3}) end},
      }
      for _, c in ipairs(calls) do
         for _, bad in ipairs({false, 5, ''}) do
            local ok, err = pcall(c[2], bad or nil)
            assert.is_false(ok)
            assert.truthy(err:find(c[1] .. ': expected a file path', 1, true), err)
         end
      end
      local ok, err = pcall(sio.encode1DnumSpikes, tmp('.bsn'), {1, 2}, {1, 2}, {2, 3}, {3, 4}, 5)
      assert.is_false(ok)
      assert.truthy(err:find('n = 5 but nID holds 2 values', 1, true), err)
   end)
end)

describe('readIdx', function()
   local function writeIdx(path, dims, values)
      local parts = {'\0\0\8' .. string.char(#dims)}
      for _, d in ipairs(dims) do
         parts[#parts + 1] = string.char(math.floor(d / 2 ^ 24) % 256, math.floor(d / 2 ^ 16) % 256, math.floor(d / 256) % 256, d % 256)
      end
      for _, v in ipairs(values) do parts[#parts + 1] = string.char(v) end
      local f = io.open(path, 'wb')
      f:write(table.concat(parts))
      f:close()
   end

   it('reads plain and gzip-compressed IDX files', function()
      local path = tmp('.idx')
      writeIdx(path, {2, 2, 3}, {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255})
      local t = sio.readIdx(path)
      assert.are.same({2, 2, 3}, t:shape())
      assert.are.same({0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255}, t:totable())
      assert.are.equal(0, os.execute('gzip -f -k ' .. path) and 0 or 1)
      local g = sio.readIdx(path .. '.gz')
      assert.are.equal(0, T.maxAbsDiff(t, g))
      local f = io.open(path, 'wb')
      f:write('\0\0\8\3\0\0\0\2')
      f:close()
      local ok, err = pcall(sio.readIdx, path)
      assert.is_false(ok)
      assert.truthy(err:find('truncated'))
      os.remove(path)
      os.remove(path .. '.gz')
   end)

   it('believes a declared size only as far as the data goes (plain and gzip)', function()
      local path = tmp('.idx')
      local function peakGrowth(f)
         local before = snn.memoryStats().peakLiveBytes
         local ok, err = pcall(f)
         return snn.memoryStats().peakLiveBytes - before, ok, err
      end
      -- a 12-byte header declaring 50000 x 50000 bytes (10 GB as float32)
      writeIdx(path, {50000, 50000}, {})
      local grew, ok, err = peakGrowth(function() return sio.readIdx(path) end)
      assert.is_false(ok)
      assert.truthy(err:find('readIdx: ', 1, true) and err:find('truncated') and err:find('byte 12'), err)
      assert.is_true(grew < 2 ^ 26, 'allocated ' .. grew .. ' bytes for a 12-byte file')
      -- a small gzip stream declaring 30000 x 30000 bytes with 100 KB of them
      local values = {}
      for i = 1, 100000 do values[i] = i % 7 end
      writeIdx(path, {30000, 30000}, values)
      assert.are.equal(0, os.execute('gzip -f ' .. path) and 0 or 1)
      grew, ok, err = peakGrowth(function() return sio.readIdx(path .. '.gz') end)
      assert.is_false(ok)
      assert.truthy(err:find('truncated') and err:find('byte 100012', 1, true), err)
      assert.is_true(grew < 2 ^ 26, 'allocated ' .. grew .. ' bytes before finding the stream short')
      os.remove(path .. '.gz')
      local e
      ok, e = pcall(sio.readIdx, nil)
      assert.truthy(not ok and e:find('readIdx: expected a file path', 1, true), e)
   end)

   it('reads the Fashion-MNIST files when installed', function()
      local p = '/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz'
      if not io.open(p) then
         pending('dataset-fashion-mnist is not installed (tools/install-deps.sh installs it)')
         return
      end
      local labels = sio.readIdx(p)
      assert.are.same({10000}, labels:shape())
      assert.are.equal(9, labels:max())
      assert.are.equal(0, labels:min())
   end)
end)

describe('saccade', function()
   -- a synthetic 28x28 digit-like stroke image
   local function strokeImage()
      local img = T.zeros({28, 28})
      local d = img:data()
      for y = 4, 23 do
         for x = 9, 12 do d[y * 28 + x] = 255 end
         for x = 13, 20 do if y < 8 or (y > 13 and y < 17) then d[y * 28 + x] = 200 end end
      end
      return img
   end

   it('produces an N-MNIST-like stream: both polarities, 34x34 sensor, 300 ms, counts in the documented range', function()
      local ev = sio.saccade(strokeImage(), {seed = 3})
      assert.is_true(ev.n >= 1500 and ev.n <= 9000, 'events: ' .. ev.n)
      local on, off, xmax, ymax, tmax = 0, 0, 0, 0, 0
      for i = 0, ev.n - 1 do
         if ev.p[i] == 1 then on = on + 1 else off = off + 1 end
         xmax, ymax, tmax = math.max(xmax, ev.x[i]), math.max(ymax, ev.y[i]), math.max(tmax, ev.t[i])
         if i > 0 then assert(ev.t[i] >= ev.t[i - 1], 'events are in time order') end
      end
      assert.is_true(on > 0.2 * ev.n and off > 0.2 * ev.n)
      assert.is_true(xmax < 34 and ymax < 34 and tmax <= 300)
      -- all three saccades produce events
      local thirds = {0, 0, 0}
      for i = 0, ev.n - 1 do
         local k = math.min(3, math.floor(ev.t[i] / 100) + 1)
         thirds[k] = thirds[k] + 1
      end
      for k = 1, 3 do assert.is_true(thirds[k] > 0.15 * ev.n) end
   end)

   it('is deterministic for a seed and changes with it; a blank image is silent', function()
      local a = sio.saccade(strokeImage(), {seed = 7})
      local b = sio.saccade(strokeImage(), {seed = 7})
      local c = sio.saccade(strokeImage(), {seed = 8})
      assert.are.equal(a.n, b.n)
      for i = 0, a.n - 1, 97 do assert.are.same({a.x[i], a.t[i]}, {b.x[i], b.t[i]}) end
      assert.is_true(a.n ~= c.n or a.t[10] ~= c.t[10])
      assert.are.equal(0, sio.saccade(T.zeros({28, 28})).n)
      assert.has_error(function() sio.saccade(T.zeros({28, 28}), {bogus = 1}) end)
   end)

   it('bounds its options: a tiny dt or a huge saccade is an error, not hours of work', function()
      local img = strokeImage()
      local function err(opts, want)
         local t0 = os.clock()
         local ok, e = pcall(sio.saccade, img, opts)
         assert.is_false(ok)
         assert.truthy(e:find('saccade: ', 1, true) and e:find(want, 1, true), e)
         assert.is_true(os.clock() - t0 < 1)
      end
      err({dt = 1e-6}, 'exceed the limit of 2.5e+08 pixel updates')
      err({saccade = 1e9}, 'exceed the limit')
      err({noise = 1e9}, 'above the limit of 67108864')
      err({width = 'x'}, "option 'width' must be a whole number")
      err({width = 1e10}, "option 'width'")
      err({dt = 0 / 0}, "option 'dt'")
      err({bg = 1}, "option 'bg'")
      err({seed = 'x'}, "option 'seed'")
      err({path = {{0, 0}}}, "option 'path'")
      err('fast', 'expected an options table')
      -- a finer step than the default still runs (34 x 34 pixels, 3000 steps)
      assert.is_true(sio.saccade(img, {dt = 0.1, seed = 1}).n > 0)
   end)

   it('writes a set of files all or nothing, checking every path first', function()
      local imgs = T.zeros({3, 28, 28})
      imgs:narrow(1, 1, 1):narrow(2, 5, 10):fill(255)
      local dir = os.tmpname()
      os.remove(dir)
      snn.utils.mkdir(dir)
      local a, c = dir .. '/a.bs2', dir .. '/c.bs2'
      -- a hole in the list used to crash
      local ok, err = pcall(sio.saccadeToFiles, imgs, {a, nil, c})
      assert.is_false(ok)
      assert.truthy(err:find('saccadeToFiles: paths[2] must be a file path, got nil', 1, true), err)
      ok, err = pcall(sio.saccadeToFiles, imgs, {a, a, c})
      assert.truthy(not ok and err:find('paths[1] and paths[2]', 1, true), err)
      -- one unwritable path: the error names saccadeToFiles and the image; no file of the set is left
      ok, err = pcall(sio.saccadeToFiles, imgs, {a, dir .. '/missing/b.bs2', c})
      assert.is_false(ok)
      assert.truthy(err:find('^saccadeToFiles: image 2') and err:find('cannot open'), err)
      for _, name in ipairs({'a.bs2', 'c.bs2', 'a.bs2.part', 'c.bs2.part', 'a.bs2.part.tmp'}) do
         assert.is_nil(io.open(dir .. '/' .. name, 'rb'), name .. ' was left behind')
      end
      -- and when all are writable, all are written, as encode2Dspikes would
      sio.saccadeToFiles(imgs, {a, dir .. '/b.bs2', c}, {seed = 4})
      local want = tmp('.bs2')
      sio.encode2Dspikes(want, sio.saccade(imgs:select(1, 1), {seed = 5}))
      assert.is_true(bytes(a) == bytes(want))
      for _, name in ipairs({'a.bs2', 'b.bs2', 'c.bs2'}) do os.remove(dir .. '/' .. name) end
      os.remove(want)
      os.remove(dir)
   end)
end)

describe('pictures', function()
   local function u32(s, i) return ((s:byte(i) * 256 + s:byte(i + 1)) * 256 + s:byte(i + 2)) * 256 + s:byte(i + 3) end

   -- walk the PNG chunks, checking CRCs, and inflate the image data
   local function decodePng(path)
      local s = bytes(path)
      assert.are.equal('\137PNG\r\n\26\n', s:sub(1, 8))
      local pos, w, h, idat = 9, nil, nil, {}
      local zlib = ffi.load('z')
      pcall(ffi.cdef, [[unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned len);
         int uncompress(unsigned char *dest, unsigned long *destLen, const unsigned char *source, unsigned long sourceLen);]])
      while pos <= #s do
         local len, typ = u32(s, pos), s:sub(pos + 4, pos + 7)
         local body = s:sub(pos + 8, pos + 7 + len)
         local crc = u32(s, pos + 8 + len)
         assert.are.equal(crc, tonumber(zlib.crc32(0, typ .. body, 4 + len)), typ .. ' CRC')
         if typ == 'IHDR' then w, h = u32(body, 1), u32(body, 5) end
         if typ == 'IDAT' then idat[#idat + 1] = body end
         pos = pos + 12 + len
         if typ == 'IEND' then break end
      end
      local z = table.concat(idat)
      local size = (w * 3 + 1) * h
      local buf = ffi.new('unsigned char[?]', size)
      local n = ffi.new('unsigned long[1]', size)
      assert.are.equal(0, zlib.uncompress(buf, n, z, #z))
      assert.are.equal(size, tonumber(n[0]))
      return w, h, function(x, y)
         local o = y * (w * 3 + 1) + 1 + x * 3
         return buf[o], buf[o + 1], buf[o + 2]
      end
   end

   it('draws a spike raster PNG with a dark pixel at each spike', function()
      local s = T.zeros({1, 3, 1, 1, 50})
      s:select(2, 2):view({50}):narrow(1, 11, 1):fill(1)
      local path = tmp('.png')
      sio.raster(s, path, {minHeight = 1})
      local w, h, px = decodePng(path)
      assert.are.same({50 + 8, 3 + 8}, {w, h})
      assert.are.same({0, 0, 0}, {px(4 + 10, 4 + 1)})
      assert.are.same({255, 255, 255}, {px(4 + 11, 4 + 1)})
      assert.are.same({255, 255, 255}, {px(4 + 10, 4 + 0)})
      -- by default three neurons get 8 pixel rows each (7 drawn, 1 gap)
      sio.raster(s, path)
      local _, h2, px2 = decodePng(path)
      assert.are.equal(3 * 8 + 8, h2)
      assert.are.same({0, 0, 0}, {px2(4 + 10, 4 + 8 + 6)})
      assert.are.same({255, 255, 255}, {px2(4 + 10, 4 + 8 + 7)})
      -- two panels side by side, and events as input
      sio.raster({s, s}, path, {minHeight = 1})
      local w2 = decodePng(path)
      assert.are.equal(50 * 2 + 8 + 8, w2)
      sio.raster(sio.read2Dspikes(SIO .. 'NMNIST_1.bs2'), path)
      local w3, h3 = decodePng(path)
      assert.is_true(w3 > 300 and h3 > 100)
      os.remove(path)
   end)

   it('skips events at negative coordinates or times instead of drawing outside the image', function()
      local path = tmp('.png')
      -- y = -300000 used to write far outside the buffer; only the second event is drawn
      sio.raster(sio.event({1, 1}, {-300000, 1}, {0, 1}, {1, 2}), path, {minHeight = 1})
      local w, h, px = decodePng(path)
      -- rows: p 0..1 x y 0..1 x x 0..1 = 8; bins: t 0..2 = 3
      assert.are.same({3 + 8, 8 + 8}, {w, h})
      local dark = 0
      for y = 0, h - 1 do
         for x = 0, w - 1 do if px(x, y) == 0 then dark = dark + 1 end end
      end
      assert.are.equal(1, dark)
      assert.are.same({0, 0, 0}, {px(4 + 2, 4 + 7)}) -- row (p 1, y 1, x 1) = 7, bin 2
      for _, ev in ipairs({sio.event({-5, 1}, {0, 1}, {0, 1}, {1, 2}), sio.event({-100000, 2}, nil, {0, 1}, {1, 2}),
                           sio.event({1, 2}, {1, 2}, {0, 1}, {-100, -20}), sio.event({1, 2}, {1, 2}, {0, 1}, {1, 1e9})}) do
         assert.are.equal(path, sio.raster(ev, path))
         decodePng(path)
      end
      os.remove(path)
   end)

   it('names raster and imageToPng (not the PNG writer) in errors, and checks options', function()
      local ev = sio.event({1, 2}, {1, 2}, {0, 1}, {1, 20})
      local function err(f, ...)
         local ok, e = pcall(f, ...)
         assert.is_false(ok)
         return e
      end
      local e = err(sio.raster, ev, '/nonexistent-dir/r.png')
      assert.truthy(e:find('^raster: cannot open'), e)
      e = err(sio.imageToPng, T.rand({4, 4}), '/nonexistent-dir/i.png')
      assert.truthy(e:find('^imageToPng: cannot open'), e)
      assert.truthy(err(sio.raster, ev, nil):find('raster: expected a file path', 1, true))
      assert.truthy(err(sio.raster, ev, tmp('.png'), {samplingTime = 0}):find('raster: samplingTime', 1, true))
      assert.truthy(err(sio.raster, ev, tmp('.png'), {maxWidth = 'x'}):find('raster: maxWidth', 1, true))
      assert.truthy(err(sio.raster, T.ones({3, 0}), tmp('.png')):find('raster: expected a non-empty tensor', 1, true))
   end)

   it('writes {H, W} and {1, H, W} images as grey and {3, H, W} as RGB, and refuses other shapes', function()
      local path = tmp('.png')
      local g = T.fromtable({{0, 1, 0.5}, {0.2, 0, 1}})
      sio.imageToPng(g, path)
      local w, h, px = decodePng(path)
      assert.are.same({3, 2}, {w, h})
      assert.are.same({255, 255, 255}, {px(1, 0)})
      assert.are.same({51, 51, 51}, {px(0, 1)})
      local grey = bytes(path)
      sio.imageToPng(g:view({1, 2, 3}), path)
      assert.is_true(bytes(path) == grey)
      local rgb = T.zeros({3, 2, 3})
      rgb:select(1, 1):fill(1)
      rgb:select(1, 3):narrow(2, 3, 1):fill(1)
      sio.imageToPng(rgb, path)
      _, _, px = decodePng(path)
      assert.are.same({255, 0, 0}, {px(0, 0)})
      assert.are.same({255, 0, 255}, {px(2, 1)})
      -- {2, H, W} read past the end, {1, 3000, 3000} crashed; a nil path crashed
      for _, shape in ipairs({{2, 4, 4}, {4, 4, 4}, {1, 1, 4, 4}, {5}}) do
         local ok, e = pcall(sio.imageToPng, T.rand(shape), path)
         assert.is_false(ok)
         assert.truthy(e:find('imageToPng: expected a {H, W} or {1, H, W} grey or {3, H, W} RGB image tensor, got '
            .. T.shapeStr(T.rand(shape)), 1, true), e)
      end
      local ok, e = pcall(sio.imageToPng, T.rand({4, 4}), nil)
      assert.truthy(not ok and e:find('imageToPng: expected a file path, got nil', 1, true), e)
      ok, e = pcall(sio.imageToPng, T.rand({0, 4}), path)
      assert.truthy(not ok and e:find('imageToPng: the image is empty', 1, true), e)
      os.remove(path)
   end)

   -- walk the GIF blocks and LZW-decode every frame
   local function decodeGif(s)
      assert.are.equal('GIF89a', s:sub(1, 6))
      local W, Hh, flags = s:byte(7) + 256 * s:byte(8), s:byte(9) + 256 * s:byte(10), s:byte(11)
      local pos = 14 + 3 * (2 ^ ((flags % 8) + 1))
      local frames = {}
      while true do
         local b = s:byte(pos)
         if b == 0x21 then
            pos = pos + 2
            while s:byte(pos) ~= 0 do pos = pos + s:byte(pos) + 1 end
            pos = pos + 1
         elseif b == 0x2C then
            pos = pos + 10
            local minb = s:byte(pos)
            pos = pos + 1
            local data = {}
            while s:byte(pos) ~= 0 do
               data[#data + 1] = s:sub(pos + 1, pos + s:byte(pos))
               pos = pos + s:byte(pos) + 1
            end
            pos = pos + 1
            data = table.concat(data)
            local clear, eoi = 2 ^ minb, 2 ^ minb + 1
            local width, dict, out, prev = minb + 1, {}, {}, nil
            local acc, nb, i = 0, 0, 1
            local function reset()
               dict = {}
               for k = 0, clear - 1 do dict[k] = {k} end
               dict[clear], dict[eoi] = {}, {}
               width, prev = minb + 1, nil
            end
            reset()
            while true do
               while nb < width do
                  acc = acc + data:byte(i) * 2 ^ nb
                  nb, i = nb + 8, i + 1
               end
               local code = acc % 2 ^ width
               acc, nb = math.floor(acc / 2 ^ width), nb - width
               if code == clear then reset()
               elseif code == eoi then break
               else
                  local entry = dict[code]
                  if not entry then
                     entry = {unpack(prev)}
                     entry[#entry + 1] = prev[1]
                  end
                  for _, v in ipairs(entry) do out[#out + 1] = v end
                  local n = 0
                  for _ in pairs(dict) do n = n + 1 end
                  if prev and n < 4096 then
                     local e = {unpack(prev)}
                     e[#e + 1] = entry[1]
                     dict[n] = e
                     if n + 1 == 2 ^ width and width < 12 then width = width + 1 end
                  end
                  prev = entry
               end
            end
            frames[#frames + 1] = out
         elseif b == 0x3B then
            break
         else
            error('unexpected GIF block ' .. tostring(b) .. ' at byte ' .. pos)
         end
      end
      return W, Hh, frames
   end

   it('writes an animated GIF of an event stream, one frame per 1000/frameRate ms', function()
      local ev = sio.read2Dspikes(SIO .. 'NMNIST_1.bs2')
      local path = tmp('.gif')
      sio.animTD(ev, path, {frameRate = 10, scale = 2})
      local W, Hh, frames = decodeGif(bytes(path))
      assert.are.same({68, 68}, {W, Hh})
      assert.are.equal(math.ceil(305.924 / 100) - math.floor(0.893 / 100), #frames)
      -- every frame decodes to W*H palette indices; ON (2) and OFF (1) both appear
      local seen = {}
      for _, f in ipairs(frames) do
         assert.are.equal(W * Hh, #f)
         for _, v in ipairs(f) do seen[v] = true end
      end
      assert.is_true(seen[0] and seen[1] and seen[2])
      os.remove(path)
   end)

   it('leaves out events at negative coordinates (1-D: negative times) and bounds the GIF size', function()
      local path = tmp('.gif')
      -- x = -50 used to write before the frame buffer
      sio.animTD(sio.event({-50, 1}, {0, 1}, {0, 1}, {1, 2}), path, {scale = 1})
      local W, Hh, frames = decodeGif(bytes(path))
      assert.are.same({2, 2, 1}, {W, Hh, #frames})
      assert.are.same({0, 0, 0, 2}, frames[1]) -- only (1, 1), ON
      for _, ev in ipairs({sio.event({1, 1}, {-100000, 1}, {0, 1}, {1, 2}), sio.event({1, 2}, nil, {0, 1}, {-100000, 2}),
                           sio.event({-100000, 2}, nil, {0, 1}, {1, 2})}) do
         sio.animTD(ev, path, {scale = 1})
         decodeGif(bytes(path))
      end
      local function err(ev, opts, want)
         local ok, e = pcall(sio.animTD, ev, path, opts)
         assert.is_false(ok)
         assert.truthy(e:find('animTD: ', 1, true) and e:find(want, 1, true), e)
      end
      local ev = sio.event({1, 2}, {1, 2}, {0, 1}, {1, 1e9})
      err(ev, nil, 'exceed the limit of 2^30 bytes')                   -- was 'size of C type is unknown or too large'
      err(sio.event({1, 2}, {1, 2}, {0, 1}, {1, 2}), {frameRate = 1e9}, 'exceed the limit')
      err(sio.event({1, 70000}, {1, 2}, {0, 1}, {1, 2}), {scale = 1}, 'at most 65535 pixels a side')
      err(ev, {frameRate = 0}, 'frameRate')
      err(ev, {scale = 1.5}, 'scale must be a positive whole number')
      os.remove(path)
   end)

   it('showTD writes the animation to a temporary GIF, says where and returns it (no display here)', function()
      local ev = sio.read2Dspikes(SIO .. 'NMNIST_1.bs2')
      local printed = {}
      local realPrint = _G.print
      _G.print = function(...) printed[#printed + 1] = table.concat({...}, ' ') end
      local ok, path = pcall(sio.showTD, ev, nil, 10) -- the reference's (TD, fig, frameRate)
      _G.print = realPrint
      assert.is_true(ok, path)
      assert.truthy(path:match('%.gif$'))
      assert.are.same({'showTD: animation written to ' .. path .. ' (no display here: open it in an image viewer)'},
         printed)
      local _, _, frames = decodeGif(bytes(path))
      assert.are.equal(math.ceil(305.924 / 100) - math.floor(0.893 / 100), #frames) -- frameRate 10
      os.remove(path)
      local e
      ok, e = pcall(sio.showTD, ev, {frameRate = 0})
      assert.is_false(ok)
      assert.truthy(e:find('showTD: frameRate must be a positive number', 1, true), e)
   end)
end)
