-- sparkls.nvim options: defaults, validation (vim.validate) and LuaLS annotations.

---@class sparkls.Keymap
---@field accept string|false Accept the whole suggestion; outside a suggestion the key does what it always does.
---@field accept_word string|false Accept the next word of the suggestion.
---@field accept_line string|false Accept the rest of the suggestion's current line.
---@field dismiss string|false Hide the suggestion (<Esc> always hides it too).

---@class sparkls.SuggestionConfig
---@field auto_trigger boolean Ask for a suggestion while typing in Insert mode.
---@field debounce_ms integer Wait this long after the last keystroke before asking (the server adds its own adaptive wait).
---@field hl_group string Highlight of the ghost text (`SparklsGhost`, linked to `Comment` unless you define it).
---@field keymap sparkls.Keymap

---@class sparkls.NextEditConfig
---@field enabled boolean Ask for next edits (the related edit elsewhere) after each change.
---@field debounce_ms integer Wait this long after the last change before asking.
---@field hl_delete string Highlight of the text a next edit removes (`SparklsNextEditDelete`, struck through).
---@field hl_add string Highlight of the text it inserts (`SparklsNextEditAdd`, linked to `DiffAdd`).

---@class sparkls.Config
---@field cmd string[] How to start the server; default `sparkls serve` found on $PATH.
---@field cmd_env? table<string, string> Extra environment for the server.
---@field filetypes string[] Filetypes that start (or attach to) the server.
---@field root_markers string[] Files or folders whose nearest ancestor is the workspace root (else the file's folder).
---@field settings table Sparkls settings sent as initializationOptions (`backend`, `debounce_ms`, `max_tokens`, ...; see the README's table).
---@field renderer "sparkls"|"builtin" Who draws ghost text. "sparkls": this plugin, streamed, and Neovim 0.12's `vim.lsp.inline_completion` is turned off for the sparkls client; "builtin": the plugin draws nothing, does not opt in to streaming, and enables `vim.lsp.inline_completion` in sparkls's buffers (Neovim ≥ 0.12).
---@field suggestion sparkls.SuggestionConfig
---@field next_edit sparkls.NextEditConfig The accept key (<Tab>) jumps to a shown next edit, then applies it; the dismiss key hides it.

local M = {}

---@type sparkls.Config
M.default = {
  cmd = { 'sparkls', 'serve' },
  cmd_env = nil,
  filetypes = { 'python', 'lua', 'javascript', 'typescript', 'go', 'rust', 'c', 'cpp' },
  root_markers = { '.git', 'pyproject.toml' },
  settings = {},
  renderer = 'sparkls',
  suggestion = {
    auto_trigger = true,
    debounce_ms = 30,
    hl_group = 'SparklsGhost',
    keymap = {
      accept = '<Tab>',
      accept_word = '<M-w>',
      accept_line = '<M-l>',
      dismiss = '<C-]>',
    },
  },
  next_edit = {
    enabled = true,
    debounce_ms = 75,
    hl_delete = 'SparklsNextEditDelete',
    hl_add = 'SparklsNextEditAdd',
  },
}

---@type sparkls.Config
M.current = vim.deepcopy(M.default)

local function key(v)
  return v == false or type(v) == 'string'
end

--- Raise an error naming the first bad option.
---@param c sparkls.Config
function M.validate(c)
  vim.validate('cmd', c.cmd, function(v)
    return type(v) == 'table' and #v > 0 and vim.iter(v):all(function(s) return type(s) == 'string' end)
  end, 'a non-empty list of strings')
  vim.validate('cmd_env', c.cmd_env, 'table', true)
  vim.validate('filetypes', c.filetypes, 'table')
  vim.validate('root_markers', c.root_markers, 'table')
  vim.validate('settings', c.settings, 'table')
  vim.validate('renderer', c.renderer, function(v)
    return v == 'sparkls' or v == 'builtin'
  end, '"sparkls" or "builtin"')
  local s = c.suggestion
  vim.validate('suggestion', s, 'table')
  vim.validate('suggestion.auto_trigger', s.auto_trigger, 'boolean')
  vim.validate('suggestion.debounce_ms', s.debounce_ms, function(v)
    return type(v) == 'number' and v >= 0
  end, 'a number >= 0')
  vim.validate('suggestion.hl_group', s.hl_group, 'string')
  vim.validate('suggestion.keymap', s.keymap, 'table')
  for _, name in ipairs({ 'accept', 'accept_word', 'accept_line', 'dismiss' }) do
    vim.validate('suggestion.keymap.' .. name, s.keymap[name], key, 'a key (string) or false')
  end
  local n = c.next_edit
  vim.validate('next_edit', n, 'table')
  vim.validate('next_edit.enabled', n.enabled, 'boolean')
  vim.validate('next_edit.debounce_ms', n.debounce_ms, function(v)
    return type(v) == 'number' and v >= 0
  end, 'a number >= 0')
  vim.validate('next_edit.hl_delete', n.hl_delete, 'string')
  vim.validate('next_edit.hl_add', n.hl_add, 'string')
end

--- Merge `opts` over the defaults, validate, and make the result current.
---@param opts? table
---@return sparkls.Config
function M.setup(opts)
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.default), opts or {})
  -- Lists replace, they do not merge index by index.
  for _, k in ipairs({ 'cmd', 'filetypes', 'root_markers' }) do
    if opts and opts[k] ~= nil then
      merged[k] = opts[k]
    end
  end
  M.validate(merged)
  M.current = merged
  return merged
end

---@return sparkls.Config
function M.get()
  return M.current
end

return M
