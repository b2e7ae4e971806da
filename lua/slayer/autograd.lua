--[[
slayer.autograd -- reverse-mode automatic differentiation.

Every differentiable op calls `record(out, inputs, backward)` after computing
its result.  When recording is on and one of the inputs requires a gradient,
the result remembers a node; `backward(gradOut)` returns one gradient per
input (nil where an input needs none).  A backward function must not keep
gradOut or what it returns beyond its call: the walk gives gradients made
during the backward back to the allocator once no node needs them (a kept
one raises an error when used; keep a clone).

The graph holds no activations of its own.  A node points at the nodes of
its inputs (results of recorded ops) and at its leaf inputs (tensors that
require a gradient and were not made by a recorded op), never at a result
tensor, so an intermediate result that no backward closed over is freed as
soon as the user's code drops it, as PyTorch frees it (W2 at batch 12 held
1,595 MB after the forward pass when nodes pointed at their input tensors,
where only 680 MB are saved activations).  A backward function keeps what
it needs itself, in its closure.

`run(root, grad)` orders the graph reachable from root (inputs before
outputs), walks it from the root back, sums the gradients arriving at each
node, and adds the totals into the `.grad` of the leaves.  Leaf gradients
accumulate across calls until zeroGrad.  Each node lets go of its backward
function (and what it closed over) once it has run, so saved activations
can be collected during the walk, and the graph is released afterwards:
each result still alive forgets its node (and is marked `_freed`, so a
second backward says why it cannot run).  A node also notes how many
in-place writes each tensor input's storage had seen (sl_tensor_version);
run refuses, before any gradient reaches a leaf, when one has changed since,
and when the graph reaches a node an earlier backward freed.  The inputs
are noted weakly: an input nothing holds any more (no backward kept it)
cannot have been changed, and its values are not needed.
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

local WEAK_V = {__mode = 'v'}
-- the result each node made, while it lives (to forget the node afterwards)
local resultOf = setmetatable({}, {__mode = 'kv'})

--- Record out = f(inputs) when any input requires a gradient.
-- inputs is an array; entries that are not tensors (numbers, nil) are fine.
function M.record(out, inputs, backward, n)
   if off[running() or MAIN] then return out end
   n = n or #inputs
   local need = false
   for i = 1, n do
      local t = inputs[i]
      if type(t) == 'table' and t._rg then need = true break end
   end
   if not need then return out end
   -- what the walk follows: the input's node, the leaf itself, or false;
   -- and, weakly, each tensor input with its in-place write count
   local next, vs, weak = {}, {}, setmetatable({}, WEAK_V)
   for i = 1, n do
      local t = inputs[i]
      next[i] = false
      if type(t) == 'table' then
         if t._rg then next[i] = t._node or t end
         if t._c then
            vs[i] = tonumber(version(t._c))
            weak[i] = t
         end
      end
   end
   local node = {_isnode = true, next = next, n = n, backward = backward, versions = vs, tensors = weak}
   out._rg = true
   out._node = node
   resultOf[node] = out
   return out
end

-- an input changed in place since the forward: its saved values are stale
local function checkVersions(node)
   local vs, ts = node.versions, node.tensors
   for i = 1, node.n do
      local inp = ts[i]
      if inp and vs[i] and rawget(inp, '_c') and tonumber(version(inp._c)) ~= vs[i] then
         local out = resultOf[node]
         L.raise('backward: input ' .. i .. ' of the op that made a result of '
            .. (out and tostring(out:numel()) or 'some') .. ' elements '
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

local function isNode(item) return rawget(item, '_isnode') == true end

-- post-order walk from root over the graph's items (nodes, and leaf
-- tensors): inputs come before outputs; nil when the graph reaches a node
-- an earlier backward freed
local function topo(root)
   local order, seen = {}, {[root] = true}
   local stack, idx = {root}, {1}
   while #stack > 0 do
      local top = #stack
      local item = stack[top]
      local i = idx[top]
      if isNode(item) and i <= item.n then
         idx[top] = i + 1
         local inp = item.next[i]
         if inp then
            if rawget(inp, 'freed') then return nil end
            if not seen[inp] then
               seen[inp] = true
               stack[top + 1] = inp
               idx[top + 1] = 1
            end
         end
      else
         stack[top] = nil
         idx[top] = nil
         order[#order + 1] = item
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
   -- the walk's items: nodes, and leaf tensors (the root may be a leaf)
   local start = root._node or root
   local order = topo(start)
   if not order then
      L.raise('backward: part of this graph was freed by an earlier backward() through a result it shares; '
         .. 'back-propagate the sum of both at once, e.g. (z + w):backward(), or run the forward pass again')
   end
   -- before any gradient reaches a leaf
   for k = 1, #order do
      if isNode(order[k]) then checkVersions(order[k]) end
   end
   -- The walk counts its references to each gradient object (one per
   -- pending entry of grads): a node's backward may pass its gradient on
   -- unchanged, to several inputs.  An object whose count falls to 0 is
   -- garbage to the walk, and release frees it now rather than at the next
   -- collection.
   local grads, refs = {[start] = grad}, {[grad] = 1}
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
         local item = order[k]
         local g = grads[item]
         grads[item] = nil
         if g ~= nil then
            if isNode(item) then
               local res = pack(item.backward(g))
               -- the node has run: what its backward closed over (the saved
               -- activations) is garbage from here on
               item.backward, item.freed = nil, true
               for i = 1, item.n do
                  local inp = item.next[i]
                  local gi = res[i]
                  if gi ~= nil and inp and (isNode(inp) or inp._rg) then
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
                  for i = 1, item.n do
                     local gi = res[i]
                     if type(gi) == 'table' and not refs[gi] and rawget(gi, '_c') then release(gi) end
                  end
               end
            else
               accumulate(item, g)
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
   -- free the graph: the results still alive forget how they were made
   for k = 1, #order do
      local item = order[k]
      if isNode(item) then
         item.backward, item.freed = nil, true
         local t = resultOf[item]
         if t and t._node == item then
            t._node = nil
            t._rg = false
            t._freed = true
         end
      end
   end
   -- Drop the walk's own references now.  Left for the return to drop, they
   -- kept the graph from the collection Tensor:backward runs right after
   -- (measured, not explained: W2 on the CPU peaked at 4,058 MB live from
   -- its third step on instead of 2,526 MB, the last step's activations
   -- beside this one's; nn_spec checks it).
   order, grads, start = nil, nil, nil
end

return M
