-- :Sparkls status | backend [name] | toggle | suggest | dismiss

local M = {}

--- The backends sparkls ships (plugins may add more; `sparkls backends list` shows all).
M.backends = { 'local', 'cerebras-wse3', 'nvidia-blackwell', 'nvidia-hopper', 'remote' }

local function say(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = 'sparkls' })
end

---@return string
function M.status_text()
  local lsp = require('sparkls.lsp')
  local suggestion = require('sparkls.suggestion')
  local clients = vim.lsp.get_clients({ name = lsp.name })
  if #clients == 0 then
    return 'sparkls: not running (open a file of a configured filetype; :checkhealth sparkls)'
  end
  local out = {}
  for _, c in ipairs(clients) do
    local caps = c.server_capabilities or {}
    local streamed = vim.tbl_get(caps, 'experimental', 'sparkls', 'inlineCompletionStream') == true
    local s = lsp.status[c.id] or {}
    out[#out + 1] = ('sparkls: client %d, root %s, %s, suggestions %s, backend %s%s%s'):format(
      c.id,
      c.root_dir or '-',
      streamed and 'streaming' or 'not streaming',
      suggestion.enabled and 'on' or 'off',
      s.backend or require('sparkls.config').get().settings.backend or 'local',
      -- JSON null arrives as vim.NIL: only numbers are rates
      type(s.modelledTokensPerSecond) == 'number' and (', modelled %.0f tok/s'):format(s.modelledTokensPerSecond) or '',
      type(s.measuredTokensPerSecond) == 'number' and (', measured %.0f tok/s'):format(s.measuredTokensPerSecond) or ''
    )
    for _, kind in ipairs({ 'completion', 'nextEdit' }) do
      local k = type(s.suggestions) == 'table' and s.suggestions[kind]
      if type(k) == 'table' and (k.offered or 0) > 0 then
        out[#out + 1] = ('  %s: %d shown, %d accepted, %d in part, %d ended unaccepted%s'):format(
          kind == 'nextEdit' and 'next edits' or 'completions',
          k.shown or 0,
          k.accepted or 0,
          k.partiallyAccepted or 0,
          (k.typedPast or 0) + (k.dismissed or 0) + (k.superseded or 0),
          type(k.acceptRate) == 'number' and (', accept rate %.0f%%'):format(100 * k.acceptRate) or ''
        )
      end
    end
  end
  return table.concat(out, '\n')
end

M.subcommands = {
  status = function()
    say(M.status_text())
  end,
  backend = function(args)
    local name = args[1]
    if not name then
      return say(M.status_text() .. '\nbackends: ' .. table.concat(M.backends, ', '))
    end
    local sent = require('sparkls').select_backend(name, function(err, result)
      if err then
        say('sparkls: ' .. (err.message or tostring(err)), vim.log.levels.ERROR)
      else
        say('sparkls: backend ' .. ((result or {}).backend or name))
      end
    end)
    if not sent then
      say('sparkls: not running in this buffer', vim.log.levels.WARN)
    end
  end,
  toggle = function()
    local on = require('sparkls.suggestion').toggle()
    say('sparkls: suggestions ' .. (on and 'on' or 'off'))
  end,
  suggest = function()
    require('sparkls').suggest()
  end,
  dismiss = function()
    require('sparkls').dismiss()
  end,
}

---@param fargs string[]
function M.run(fargs)
  local sub = fargs[1] or 'status'
  local fn = M.subcommands[sub]
  if not fn then
    return say(
      ('sparkls: unknown subcommand %q; one of: %s'):format(sub, table.concat(vim.tbl_keys(M.subcommands), ', ')),
      vim.log.levels.ERROR
    )
  end
  fn(vim.list_slice(fargs, 2))
end

---@param arglead string
---@param line string
---@return string[]
function M.complete(arglead, line)
  local words = vim.split(line, '%s+', { trimempty = true })
  local n = #words + (line:match('%s$') and 1 or 0)
  local candidates = {}
  if n <= 2 then
    candidates = vim.tbl_keys(M.subcommands)
    table.sort(candidates)
  elseif n == 3 and words[2] == 'backend' then
    candidates = M.backends
  end
  return vim.tbl_filter(function(c)
    return vim.startswith(c, arglead)
  end, candidates)
end

return M
