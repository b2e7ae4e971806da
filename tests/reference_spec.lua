-- Numbers published by the reference, reproduced from the shared data
-- (SPEC.md sections 5, 16.3, 20, 21).
local snn = require 'slayer'
local H = require 'support.helpers'
local T = snn.tensor

local DATA = assert(H.dataDir(), 'shared data not found: run from the checkout next to ../shared or set SLAYER_DATA')

describe('the reference examples', function()
   it('Oxford: the silent network starts at the notebook loss 223,909.14 (psp, spikeTime, binning)', function()
      local p = snn.params(DATA .. '/oxford/oxford.yaml')
      local err = snn.loss(p)
      local desired = snn.io.read1Dspikes(DATA .. '/oxford/output.bs1')
         :toSpikeTensor(T.zeros({1, 1, 200, 1900}), 1):view({1, 200, 1, 1, 1900})
      local E = err:spikeTime(T.zeros({1, 200, 1, 1, 1900}), desired):item()
      assert.is_true(math.abs(E - 223909.14) < 0.5, 'got ' .. E)
      -- the same through an explicit double-precision psp of the target
      local eps, d, Ns = err.slayer.srmKernel:totable(), desired:totable(), 1900
      local s = 0
      for r = 0, 199 do
         for t = 0, Ns - 1 do
            local a = 0
            for i = 0, math.min(#eps - 1, t) do a = a + eps[i + 1] * d[r * Ns + t - i + 1] end
            s = s + a * a
         end
      end
      assert.is_true(math.abs(0.5 * s - E) < 1e-5 * E)
   end)

   it('N-MNIST: the test list holds the class counts of SPEC 20.3', function()
      local ds = snn.data.SpikeFiles{root = DATA .. '/nmnist-small', list = 'test100.txt'}
      local counts = {}
      for i = 1, #ds do counts[ds.labels[i]] = (counts[ds.labels[i]] or 0) + 1 end
      assert.are.same({8, 14, 8, 11, 14, 7, 10, 15, 2, 11}, counts)
   end)
end)
