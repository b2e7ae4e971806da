--[[
slayer.autograd -- reverse-mode automatic differentiation.

Every differentiable op calls `record(out, inputs, backward)` after computing
its result.  When recording is on and one of the inputs requires a gradient,
the result remembers a node {inputs, backward}; `backward(gradOut)` returns
one gradient per input (nil where an input needs none).  A backward function
must not keep gradOut or what it returns beyond its call: the walk gives
gradients made during the backward back to the allocator once no node needs
them (a kept one raises an error when used; keep a clone).

`run(root, grad)` orders the graph reachable from root (inputs before
outputs), walks it from the root back, sums the gradients arriving at each
tensor, and adds the totals into the `.grad` of the leaves (tensors that
require a gradient and were not produced by a recorded op).  Leaf gradients
accumulate across calls until zeroGrad.  The graph is released afterwards:
each visited result forgets its node (and is marked `_freed`, so a second
backward says why it cannot run), so the tensors its backward closed over
can be collected.  A node also notes how many in-place writes each tensor
input's storage had seen (sl_tensor_version); run refuses, before any
gradient reaches a leaf, when one has changed since, and when the graph
reaches a result an earlier backward freed.
]]
local L = require 'slayer.ffi'
local M = {}

-- Recording is switched off per coroutine (noGrad, the backward walk), so a
-- coroutine that yields inside noGrad leaves the others recording.
local running = coroutine.running
local MAIN = {} -- LuaJIT's coroutine.running() is nil on the main thread
local off = setmetatable({}, {__mode = 'k'})

-- set the running coroutine's state; returns the previous one
local function setEnabled(on)
   local co = running() or MAIN
   local prev = not off[co]
   off[co] = (not on) or nil
   return prev
end

local version = L.C.sl_tensor_version

-- the in-place write counts of the tensor inputs, to check at backward
local function versionsOf(inputs, n)
   local vs = {}
   for i = 1, n do
      local t = inputs[i]
      if type(t) == 'table' and t._c then vs[i] = tonumber(version(t._c)) end
   end
   return vs
end

--- Record out = f(inputs) when any input requires a gradient.
-- inputs is an array; entries that are not tensors (numbers, nil) are fine.
function M.record(out, inputs, backward, n)
   if off[running() or MAIN] then return out end
   n = n or #inputs
   for i = 1, n do
      local t = inputs[i]
      if type(t) == 'table' and t._rg then
         out._rg = true
         out._node = {inputs = inputs, n = n, backward = backward, versions = versionsOf(inputs, n)}
         return out
      end
   end
   return out
end

-- an input changed in place since the forward: its saved values are stale
local function checkVersions(t, node)
   local vs = node.versions
   for i = 1, node.n do
      local inp = node.inputs[i]
      if vs[i] and tonumber(version(inp._c)) ~= vs[i] then
         L.raise('backward: input ' .. i .. ' of the op that made a result of ' .. tostring(t:numel()) .. ' elements '
            .. 'was changed in place (fill, copy, add_, mul_, clamp_, an optimizer step, ...) after the forward '
            .. 'pass, so its gradient would be wrong; change a copy instead, or run the forward pass again')
      end
   end
end

--- True when recording is on and one of the arguments requires a gradient.
function M.needed(a, b, c)
   if off[running() or MAIN] then return false end
   return (type(a) == 'table' and a._rg) or (type(b) == 'table' and b._rg)
      or (type(c) == 'table' and c._rg) or false
end

local function pack(...) return {n = select('#', ...), ...} end

--- Run fn(...) with recording off; restores the previous state on errors too.
function M.noGrad(fn, ...)
   local mt = type(fn) == 'table' and getmetatable(fn)
   if type(fn) ~= 'function' and not (mt and mt.__call) then
      L.raise('noGrad: expected a function to run, got ' .. type(fn))
   end
   local prev = setEnabled(false)
   local res = pack(pcall(fn, ...))
   setEnabled(prev)
   if not res[1] then error(res[2], 0) end
   return unpack(res, 2, res.n)
end

-- post-order walk from root over recorded results: inputs come before
-- outputs; nil when the graph reaches a result an earlier backward freed
local function topo(root)
   local order, seen = {}, {[root] = true}
   local stack, idx = {root}, {1}
   while #stack > 0 do
      local top = #stack
      local t = stack[top]
      local node = t._node
      local i = idx[top]
      if node and i <= node.n then
         idx[top] = i + 1
         local inp = node.inputs[i]
         if type(inp) == 'table' and inp._freed then return nil end
         if type(inp) == 'table' and inp._rg and not seen[inp] then
            seen[inp] = true
            stack[top + 1] = inp
            idx[top + 1] = 1
         end
      else
         stack[top] = nil
         idx[top] = nil
         order[#order + 1] = t
      end
   end
   return order
end

-- Tensors made while a walk runs: tensor.lua adds each new tensor to
-- M.born when it is set (weak keys), so release frees only those.
M.born = nil
local WEAK_KEYS = {__mode = 'k'}

--- Back-propagate grad from root through the recorded graph.
-- accumulate(leaf, g) adds g into leaf.grad; add(a, b) returns a + b;
-- release(g), when given, may free a gradient the walk no longer holds
-- (tensor.lua frees only those in M.born).
function M.run(root, grad, accumulate, add, release)
   if not root._rg then
      if root._freed then
         L.raise('backward: the graph of this result was already freed by an earlier backward();'
            .. ' run the forward pass again to back-propagate a second time')
      end
      L.raise('backward: this tensor does not require a gradient (no input had requiresGrad(true))')
   end
   local order = topo(root)
   if not order then
      L.raise('backward: part of this graph was freed by an earlier backward() through a result it shares; '
         .. 'back-propagate the sum of both at once, e.g. (z + w):backward(), or run the forward pass again')
   end
   -- before any gradient reaches a leaf
   for k = 1, #order do
      if order[k]._node then checkVersions(order[k], order[k]._node) end
   end
   -- The walk counts its references to each gradient object (one per
   -- pending entry of grads): a node's backward may pass its gradient on
   -- unchanged, to several inputs.  An object whose count falls to 0 is
   -- garbage to the walk, and release frees it now rather than at the next
   -- collection.
   local grads, refs = {[root] = grad}, {[grad] = 1}
   local function hold(g) refs[g] = (refs[g] or 0) + 1 end
   local function drop(g)
      local n = refs[g] - 1
      if n > 0 then refs[g] = n return end
      refs[g] = nil
      if release then release(g) end
   end
   local prev = setEnabled(false) -- gradients of gradients are not recorded
   local outerBorn = M.born -- (a backward run inside a backward function has its own)
   M.born = setmetatable({}, WEAK_KEYS)
   local ok, err = pcall(function()
      for k = #order, 1, -1 do
         local t = order[k]
         local g = grads[t]
         grads[t] = nil
         local node = t._node
         if g ~= nil then
            if node then
               local res = pack(node.backward(g))
               for i = 1, node.n do
                  local inp = node.inputs[i]
                  local gi = res[i]
                  if gi ~= nil and type(inp) == 'table' and inp._rg then
                     local sum = grads[inp]
                     if sum then
                        local total = add(sum, gi)
                        hold(total)
                        grads[inp] = total
                        drop(sum)
                     else
                        hold(gi)
                        grads[inp] = gi
                     end
                  end
               end
               drop(g)
               -- what the walk did not keep: gradients summed into a total,
               -- or for inputs that need none
               if release then
                  for i = 1, node.n do
                     local gi = res[i]
                     if type(gi) == 'table' and not refs[gi] and rawget(gi, '_c') then release(gi) end
                  end
               end
            else
               accumulate(t, g)
               drop(g)
            end
         end
      end
   end)
   setEnabled(prev) -- also after an error, in a node's backward or in a leaf's grad
   M.born = outerBorn
   if not ok then
      -- raised inside the pcall, our errors lost their position: give it the user's line
      if type(err) == 'string' and not err:match('^[^:\n]+:%d+: ') then L.raise(err) end
      error(err, 0)
   end
   -- free the graph: results forget how they were made
   for k = 1, #order do
      local t = order[k]
      if t._node then
         t._node = nil
         t._rg = false
         t._freed = true
      end
   end
   -- Drop the walk's own references now.  Left for the return to drop, they
   -- kept the graph from the collection Tensor:backward runs right after
   -- (measured, not explained: W2 on the CPU peaked at 4,058 MB live from
   -- its third step on instead of 2,526 MB, the last step's activations
   -- beside this one's; nn_spec checks it).
   order, grads = nil, nil
end

return M
