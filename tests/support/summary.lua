-- busted output handler: the usual terminal output, then one closing line
-- "N passed, M failed" (busted's errors count as failed; C test totals
-- handed over by tests/run.lua are included).
return function(options)
   local busted = require 'busted'
   local term = require 'term'
   local isatty = io.type(io.stdout) == 'file' and term.isatty(io.stdout)
   local handler = require('busted.outputHandlers.' .. (isatty and 'utfTerminal' or 'plainTerminal'))(options)
   busted.subscribe({'suite', 'end'}, function()
      local extra = _G.SLAYER_EXTRA_COUNTS or {passed = 0, failed = 0, skipped = 0}
      local passed = handler.successesCount + extra.passed
      local failed = handler.failuresCount + handler.errorsCount + extra.failed
      local line = string.format('%d passed, %d failed', passed, failed)
      local skipped = handler.pendingsCount + (extra.skipped or 0)
      if skipped > 0 then line = line .. string.format(', %d skipped', skipped) end
      -- a run under another build names it (tools/sanitize.sh), so that the
      -- plain line is the test command's own
      local label = os.getenv('SLAYER_SUMMARY_LABEL')
      if label and label ~= '' then line = label .. ': ' .. line end
      io.write('\n' .. line .. '\n')
      io.flush()
      -- busted's exit status counts only its own specs: a failed C test or
      -- emulated GPU spec must make the run fail too
      if extra.failed > 0 then os.exit(1) end
      return nil, true
   end)
   return handler
end
