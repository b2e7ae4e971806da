-- Network, data and score of the Oxford spike-pattern example (train.lua, eval.lua).
local snn = require 'slayer'
local T = snn.tensor
local M = {}

local Network = snn.class('OxfordNet', snn.Module)
M.Network = Network

function Network:__init(p)
   snn.Module.__init(self)
   self.slayer = snn.layer(p.neuron, p.simulation)
   self.fc1 = self.slayer:dense(p.layer[1].dim, p.layer[2].dim)
   self.fc2 = self.slayer:dense(p.layer[2].dim, p.layer[3].dim)
end

function Network:forward(x)
   local sl = self.slayer
   local s1 = sl:spike(sl:psp(self.fc1(x)))
   return sl:spike(sl:psp(self.fc2(s1)))
end

-- events -> (1, N, 1, 1, T) spike tensor
local function toTensor(ev, N, Ns)
   return ev:toSpikeTensor(T.zeros({1, 1, N, Ns}), 1):view({1, N, 1, 1, Ns})
end

-- Without the reference's files: Poisson input at 5 Hz, and a target that
-- draws a house (walls, roof, door) in spikes.
local function generated(N, Ns, seed)
   snn.manualSeed(seed)
   local input = T.bernoulli({1, N, 1, 1, Ns}, 0.005)
   local target = T.zeros({1, N, 1, 1, Ns})
   local d = target:data()
   local function line(t0, n0, t1, n1)
      local steps = math.max(math.abs(t1 - t0) / 6, math.abs(n1 - n0))
      for k = 0, steps do
         local t = math.floor(t0 + (t1 - t0) * k / steps + 0.5)
         local n = math.floor(n0 + (n1 - n0) * k / steps + 0.5)
         if t >= 0 and t < Ns and n >= 0 and n < N then d[n * Ns + t] = 1 end
      end
   end
   local L, R, base, eave, top = 0.15 * Ns, 0.85 * Ns, 0.95 * N, 0.45 * N, 0.05 * N
   line(L, base, R, base); line(L, base, L, eave); line(R, base, R, eave); line(L, eave, R, eave)
   line(L, eave, Ns / 2, top); line(R, eave, Ns / 2, top)
   line(0.45 * Ns, base, 0.45 * Ns, 0.7 * N); line(0.55 * Ns, base, 0.55 * Ns, 0.7 * N); line(0.45 * Ns, 0.7 * N, 0.55 * Ns, 0.7 * N)
   return input, target
end

--- input and target spike tensors, from `dir` (input.bs1, output.bs1) when present
function M.data(p, dir, seed)
   local N, Ns = p.layer[1].dim, math.floor(p.simulation.tSample / p.simulation.Ts)
   if dir and snn.utils.exists(dir .. '/input.bs1') and snn.utils.exists(dir .. '/output.bs1') then
      return toTensor(snn.io.read1Dspikes(dir .. '/input.bs1'), N, Ns),
         toTensor(snn.io.read1Dspikes(dir .. '/output.bs1'), p.layer[3].dim, Ns), 'files in ' .. dir
   end
   local input, target = generated(N, Ns, seed)
   return input, target, 'generated (no input.bs1/output.bs1 in ' .. tostring(dir) .. ')'
end

--- Fraction of target spikes matched by an output spike of the same neuron
-- within +-2 bins (each output spike matches at most one target spike).
function M.match(output, target)
   local o, t = T._contig(output:detach()), T._contig(target)
   local Ns = o:size(5)
   local od, td = o:data(), t:data()
   local hits, total = 0, 0
   for r = 0, o:numel() / Ns - 1 do
      local used = {}
      for k = 0, Ns - 1 do
         if td[r * Ns + k] ~= 0 then
            total = total + 1
            for dk = 0, 2 do
               local found = false
               for _, s in ipairs(dk == 0 and {0} or {-dk, dk}) do
                  local j = k + s
                  if j >= 0 and j < Ns and od[r * Ns + j] ~= 0 and not used[j] then
                     used[j], found = true, true
                     break
                  end
               end
               if found then hits = hits + 1 break end
            end
         end
      end
   end
   return total > 0 and hits / total or 0
end

return M
