--- Per-buffer debounce timers: the pause before an automatic request, shared by ghost text and next edits.
local M = {}
M.__index = M

--- A set of timers, one per buffer.
function M.new()
  return setmetatable({ timers = {} }, M)
end

--- (Re)start `buf`'s timer: `fn` runs on the main loop `ms` after the last call, unless stopped first.
---@param buf integer
---@param ms integer
---@param fn fun()
function M:run(buf, ms, fn)
  local t = self.timers[buf]
  if not t then
    t = assert(vim.uv.new_timer())
    self.timers[buf] = t
  end
  t:stop()
  t:start(ms, 0, vim.schedule_wrap(fn))
end

--- Cancel `buf`'s pending run, if any.
---@param buf integer
function M:stop(buf)
  local t = self.timers[buf]
  if t then
    t:stop()
  end
end

--- Cancel and free `buf`'s timer (the buffer is going away).
---@param buf integer
function M:close(buf)
  local t = self.timers[buf]
  self.timers[buf] = nil
  if t and not t:is_closing() then
    t:stop()
    t:close()
  end
end

return M
