--[[
Helpers for the GPU specs (tests/cuda_spec.lua and the op families' GPU
comparisons): run an op on the CPU and on the GPU and compare.

    local G = require 'support.cuda'
    if not G.available then ... pending(G.reason) ... end
    G.close(f(G.dev(x)), f(x), G.FWD, 'psp')            -- element-wise, relative
    G.close(gpuSum, cpuSum, G.FWD, 'sum', x:abs():sum(2)) -- bounded by |summands|
    G.closeNorm(gpuGrad, cpuGrad, G.GRAD, 'grad')         -- norm-wise
    G.identical(gpuIdx, cpuIdx, 'argmax')

SLAYER_CUDA_SPEC_DEVICE=cpu makes G.DEV 'cpu': the comparisons then run with
the CPU standing in for the GPU, which checks a spec's own logic on machines
without one.
]]
local snn = require 'slayer'
local T = snn.tensor

local G = {}

G.DEV = os.getenv('SLAYER_CUDA_SPEC_DEVICE') or 'cuda'
G.available = G.DEV == 'cpu' or snn.cuda.isAvailable()
G.reason = not G.available and ('CUDA not available: ' .. tostring(snn.cuda.unavailableReason())) or nil
G.FWD, G.GRAD = 1e-5, 1e-4

function G.dev(t) return t:to(G.DEV) end

local function values(t)
   if not T.isTensor(t) then return t end
   return t:detach():cpu():contiguous():totable()
end
G.values = values

--- Element-wise: |got - want| <= rtol * bound, where bound is given (the
-- sum of the magnitudes that went into each element, for sums and products:
-- their rounding error scales with it) or |want| + 1e-3 * max|want|.
-- NaN matches NaN.
function G.close(got, want, rtol, what, bound)
   local g, w = values(got), values(want)
   local b = bound and values(bound)
   assert(#g == #w, what .. ': sizes differ (' .. #g .. ' vs ' .. #w .. ')')
   local scale = 0
   for i = 1, #w do scale = math.max(scale, math.abs(w[i])) end
   for i = 1, #w do
      local d = math.abs(g[i] - w[i])
      local tol = rtol * (b and b[i] or (math.abs(w[i]) + 1e-3 * scale))
      if not (d <= tol) and not (g[i] ~= g[i] and w[i] ~= w[i]) then
         error(string.format('%s: element %d is %.9g on %s, %.9g on the CPU (tolerance %.3g)', what, i, g[i], G.DEV,
            w[i], tol), 2)
      end
   end
end

--- Norm-wise: ||got - want|| <= rtol * ||want|| (gradients, trained weights).
function G.closeNorm(got, want, rtol, what)
   local g, w = values(got), values(want)
   assert(#g == #w, what .. ': sizes differ')
   local num, den = 0, 0
   for i = 1, #w do
      num = num + (g[i] - w[i]) ^ 2
      den = den + w[i] ^ 2
   end
   local rel = math.sqrt(num) / math.max(math.sqrt(den), 1e-30)
   if not (rel <= rtol) then
      error(string.format('%s: relative difference %.3g between %s and the CPU (allowed %.3g)', what, rel, G.DEV,
         rtol), 2)
   end
end

--- Bit-for-bit equal (NaN matches NaN).
function G.identical(got, want, what)
   local g, w = values(got), values(want)
   assert(#g == #w, what .. ': sizes differ')
   for i = 1, #w do
      if g[i] ~= w[i] and not (g[i] ~= g[i] and w[i] ~= w[i]) then
         error(string.format('%s: element %d is %.9g on %s, %.9g on the CPU', what, i, g[i], G.DEV, w[i]), 2)
      end
   end
end

--- Which CPU ops have their CUDA twin: the names csrc/ forwards to the back
-- end (SL_DISPATCH(sl_<op>, ...) -> sl_<op>_cuda, and the sl_cuda_symbol
-- look-ups) against the functions libslayer_cuda.so exports (nm -D).
-- Returns {wanted = {...}, missing = {...}}, or nil and a reason.
function G.coverage(root, libdir)
   local wanted, seen = {}, {}
   local p = io.popen('cat ' .. root .. '/csrc/*.c ' .. root .. '/csrc/ops/*.c 2>/dev/null')
   local src = p:read('*a')
   p:close()
   for name in src:gmatch('SL_DISPATCH%((sl_[%w_]+)') do
      if not seen[name] then seen[name] = true; wanted[#wanted + 1] = name .. '_cuda' end
   end
   for name in src:gmatch('sl_cuda_symbol%("(sl_[%w_]+)"%)') do
      if not seen[name] and name ~= 'sl_cuda_init' then seen[name] = true; wanted[#wanted + 1] = name end
   end
   if #wanted == 0 then return nil, 'no C sources under ' .. root .. '/csrc' end
   table.sort(wanted)
   -- the library under test: $SLAYER_CUDA_LIB (the host emulator's, say) or the build's
   local so = os.getenv('SLAYER_CUDA_LIB') or (libdir .. '/libslayer_cuda.so')
   local f = io.open(so, 'rb')
   if not f then return nil, 'no ' .. so .. ' (built without the CUDA back end)' end
   f:close()
   p = io.popen('nm -D --defined-only ' .. so .. ' 2>/dev/null')
   local exported = {}
   for line in p:lines() do
      local sym = line:match('%s[TW]%s+([%w_]+)$')
      if sym then exported[sym] = true end
   end
   p:close()
   if next(exported) == nil then return nil, 'cannot list the symbols of ' .. so .. ' (nm missing?)' end
   local missing = {}
   for _, w in ipairs(wanted) do
      if not exported[w] then missing[#missing + 1] = w end
   end
   return {wanted = wanted, missing = missing}
end

--- How many elements differ at all (a note for the log, not a check: ops
-- written to round exactly as the CPU should report 0).
function G.note(got, want, what)
   local g, w = values(got), values(want)
   local n = 0
   for i = 1, #w do
      if g[i] ~= w[i] and not (g[i] ~= g[i] and w[i] ~= w[i]) then n = n + 1 end
   end
   print(string.format('  note: %s: %d of %d elements differ from the CPU%s', what, n, #w,
      n == 0 and ' (bit-identical)' or ''))
   return n
end

--- Spike trains [..., T]: identical, except in rows whose first difference
-- falls on a bin where the CPU's membrane potential u (post-refractory, as
-- the spike function leaves it) lies within rtol * |theta| of the threshold:
-- there rounding upstream may decide the spike, and every later bin of the
-- row may differ.  Returns the number of such rows (reported by the caller).
function G.spikesMatch(got, want, u, theta, what, rtol)
   rtol = rtol or 1e-5
   local shape = want:shape()
   local Tn = shape[#shape]
   local g, w, uu = values(got), values(want), values(u)
   assert(#g == #w and #uu == #w, what .. ': sizes differ')
   local near = 0
   for r = 0, #w / Tn - 1 do
      for t = 1, Tn do
         local i = r * Tn + t
         if g[i] ~= w[i] then
            if math.abs(uu[i] - theta) <= rtol * math.abs(theta) then
               near = near + 1
               break
            end
            error(string.format('%s: row %d differs at bin %d (%g on %s, %g on the CPU) where the membrane '
               .. 'potential %.9g is %.3g away from the threshold %g', what, r + 1, t, g[i], G.DEV, w[i], uu[i],
               math.abs(uu[i] - theta), theta), 2)
         end
      end
   end
   return near
end

return G
