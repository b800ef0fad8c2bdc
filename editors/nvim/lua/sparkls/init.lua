-- sparkls.nvim: streamed inline completions ("ghost text") from `sparkls serve`.
-- require('sparkls').setup{}; see editors/nvim/README.md and :checkhealth sparkls.

local api = vim.api
local config = require('sparkls.config')

local M = {}

M.did_setup = false
---@type string? why the last setup() was refused
M.setup_error = nil

--- Insert-mode mappings that were on our keys before us (e.g. Neovim's default <Tab> = snippet
--- jump), by key: used while no suggestion is shown, and put back when a later setup() frees the key.
---@type table<string, table>
local originals = {}

--- What an `expr` mapping should return to do what `lhs` did before sparkls mapped it.
---@param lhs string
---@return fun(): string
local function fallback(lhs)
  local prev = originals[lhs]
  if not prev then
    return function()
      return lhs
    end
  elseif prev.callback and prev.expr == 1 then
    return prev.callback
  elseif prev.callback then
    return function()
      return ('<Cmd>lua require("sparkls")._run_original(%q)<CR>'):format(lhs)
    end
  elseif prev.expr == 0 and prev.rhs and prev.rhs ~= '' then
    return function()
      return prev.rhs
    end
  end
  return function()
    return lhs
  end
end

---@param lhs string
function M._run_original(lhs)
  local prev = originals[lhs]
  if prev and prev.callback then
    prev.callback()
  end
end

--- An Insert-mode key that runs `rhs` while a suggestion is shown, `next_rhs` (if any) while a next
--- edit is shown, and does what it did before otherwise.
local function map(lhs, rhs, desc, next_rhs)
  if not lhs then
    return
  end
  local prev = vim.fn.maparg(lhs, 'i', false, true)
  if originals[lhs] == nil and not vim.tbl_isempty(prev) and not (prev.desc or ''):find('^sparkls:') then
    originals[lhs] = prev
  end
  local otherwise = fallback(lhs)
  vim.keymap.set('i', lhs, function()
    if require('sparkls.suggestion').visible() then
      return rhs
    end
    if next_rhs and require('sparkls.next_edit').visible() then
      return next_rhs
    end
    return otherwise()
  end, { expr = true, silent = true, desc = desc })
end

local NEXT_TAB = '<Cmd>lua require("sparkls.next_edit").tab()<CR>'
local NEXT_DISMISS = '<Cmd>lua require("sparkls.next_edit").dismiss()<CR>'

--- A Normal-mode key that acts on a shown next edit and is itself otherwise (Normal <Tab> is <C-i>).
local function map_normal(lhs, rhs, desc)
  if not lhs then
    return
  end
  vim.keymap.set('n', lhs, function()
    if require('sparkls.next_edit').visible() then
      return rhs
    end
    return lhs
  end, { expr = true, silent = true, desc = desc })
end

local mapped = {} ---@type string[]

local function keymaps(keymap)
  for _, lhs in ipairs(mapped) do
    pcall(vim.keymap.del, 'i', lhs) -- from an earlier setup()
    pcall(vim.keymap.del, 'n', lhs)
    if originals[lhs] then
      vim.fn.mapset('i', false, originals[lhs])
      originals[lhs] = nil
    end
  end
  mapped = vim.tbl_filter(function(k)
    return k ~= false
  end, { keymap.accept, keymap.accept_word, keymap.accept_line, keymap.dismiss })
  local accept = '<Cmd>lua require("sparkls.suggestion").accept("%s")<CR>'
  map(keymap.accept, accept:format('full'), 'sparkls: accept the suggestion, or jump to / apply the next edit', NEXT_TAB)
  map(keymap.accept_word, accept:format('word'), 'sparkls: accept the next word of the suggestion')
  map(keymap.accept_line, accept:format('line'), 'sparkls: accept the next line of the suggestion')
  map(keymap.dismiss, '<Cmd>lua require("sparkls.suggestion").dismiss()<CR>', 'sparkls: dismiss the suggestion', NEXT_DISMISS)
  if config.get().next_edit.enabled then
    map_normal(keymap.accept, NEXT_TAB, 'sparkls: jump to the next edit, then apply it')
    map_normal(keymap.dismiss, NEXT_DISMISS, 'sparkls: dismiss the next edit')
  end
end

--- Configure sparkls and start it for the configured filetypes (Neovim ≥ 0.11).
---@param opts? sparkls.Config
function M.setup(opts)
  if vim.fn.has('nvim-0.11') == 0 then
    vim.notify('sparkls.nvim needs Neovim 0.11 or newer', vim.log.levels.ERROR)
    return
  end
  local ok, c = pcall(config.setup, opts)
  if not ok then
    M.setup_error = tostring(c)
    vim.notify('sparkls: ' .. M.setup_error .. ' (see :checkhealth sparkls)', vim.log.levels.ERROR)
    return
  end
  M.did_setup, M.setup_error = true, nil
  api.nvim_set_hl(0, 'SparklsGhost', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'SparklsNextEditDelete', { strikethrough = true, default = true })
  api.nvim_set_hl(0, 'SparklsNextEditAdd', { link = 'DiffAdd', default = true })

  local group = api.nvim_create_augroup('sparkls', { clear = true })
  api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = c.filetypes,
    callback = function(ev)
      require('sparkls.lsp').start(ev.buf)
    end,
  })
  api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if not client or client.name ~= require('sparkls.lsp').name then
        return
      end
      require('sparkls.next_edit').attach(ev.buf)
      if config.get().renderer == 'sparkls' then
        require('sparkls.suggestion').attach(ev.buf)
      elseif vim.lsp.inline_completion then
        vim.lsp.inline_completion.enable(true, { bufnr = ev.buf })
      end
    end,
  })
  api.nvim_create_autocmd('LspDetach', {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == require('sparkls.lsp').name then
        require('sparkls.suggestion').detach(ev.buf)
        require('sparkls.next_edit').detach(ev.buf)
      end
    end,
  })
  keymaps(c.renderer == 'sparkls' and c.suggestion.keymap or {})
  -- Buffers opened before setup() (e.g. `nvim file.py` with a lazy-loaded plugin).
  for _, buf in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(buf) and vim.tbl_contains(c.filetypes, vim.bo[buf].filetype) then
      require('sparkls.lsp').start(buf)
    end
  end
end

--- Accept the shown suggestion (or its next word or line); false when none is shown.
---@param kind? "full"|"word"|"line"
---@return boolean
function M.accept(kind)
  return require('sparkls.suggestion').accept(kind)
end

--- With a next edit shown: jump to it, or (the cursor on it) apply it; false when none is shown.
--- For your own mapping when `keymap.accept` is false or the renderer is "builtin".
---@return boolean
function M.next_edit()
  return require('sparkls.next_edit').tab()
end

--- Hide the shown suggestion.
function M.dismiss()
  require('sparkls.suggestion').dismiss()
end

--- Ask for a suggestion now (an Invoked trigger).
function M.suggest()
  require('sparkls.suggestion').request(1)
end

---@return boolean
function M.visible()
  return require('sparkls.suggestion').visible()
end

--- Make `name` the active hardware backend (`sparkls.selectBackend`).
---@param name string
---@param callback? fun(err: lsp.ResponseError?, result: any)
---@return boolean sent
function M.select_backend(name, callback)
  local lsp = require('sparkls.lsp')
  local client = lsp.client(0) or lsp.client()
  return lsp.execute(nil, 'sparkls.selectBackend', { name }, function(err, result)
    if not err and client and result and result.backend then
      -- the server's sparkls/status may still name the last stream's backend until the next request
      lsp.status[client.id] = vim.tbl_extend('force', lsp.status[client.id] or {}, { backend = result.backend })
    end
    if callback then
      callback(err, result)
    end
  end)
end

--- A short status line: `sparkls: <backend> <tokens/s>`, or "" when not running.
---@return string
function M.statusline()
  local lsp = require('sparkls.lsp')
  local client = lsp.client(0)
  if not client then
    return ''
  end
  local s = lsp.status[client.id]
  if not s then
    return 'sparkls'
  end
  local tps = type(s.modelledTokensPerSecond) == 'number' and (' %d tok/s'):format(s.modelledTokensPerSecond) or ''
  return ('sparkls: %s%s'):format(s.backend or '?', tps)
end

return M
