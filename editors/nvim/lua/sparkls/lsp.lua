-- Start `sparkls serve` through Neovim's own LSP client and keep its status.

local api = vim.api
local config = require('sparkls.config')

local M = {}

M.name = 'sparkls'
M.STREAM = 'sparkls/inlineCompletionStream'
M.STATUS = 'sparkls/status'

--- The newest `sparkls/status` notification (docs/protocol.md), by client id.
---@type table<integer, table>
M.status = {}

--- Capabilities merged into Neovim's defaults: declare inline completion (0.11 does not) so
--- the server serves it, and opt in to streamed ghost text when this plugin draws it.
---@return table
function M.capabilities()
  local stream = config.get().renderer == 'sparkls'
  return {
    experimental = { sparkls = { inlineCompletionStream = stream } },
    textDocument = { inlineCompletion = { dynamicRegistration = false } },
  }
end

M.handlers = {
  [M.STREAM] = function(err, params, ctx)
    if not err and params then
      require('sparkls.suggestion').on_stream(params, ctx)
    end
  end,
  [M.STATUS] = function(err, params, ctx)
    if err or not params then
      return
    end
    M.status[ctx.client_id] = params
    api.nvim_exec_autocmds('User', { pattern = 'SparklsStatus', modeline = false, data = params })
  end,
}

--- The server's `inlineCompletionProvider`, by client id (see `own_inline_completion`).
---@type table<integer, any>
M.inline_provider = {}

--- With renderer "sparkls" the plugin owns sparkls's inline completion: it takes
--- `inlineCompletionProvider` out of the client's server_capabilities (the documented way to
--- opt a client out of a capability), so that Neovim 0.12's `vim.lsp.inline_completion` (or any
--- other consumer) never requests or draws for sparkls, whenever and however it is enabled.
--- Otherwise the user would see two ghosts, and each request would cancel the other's stream.
--- The plugin sends its own requests with `client:request`, which does not check capabilities.
---@param client vim.lsp.Client
function M.own_inline_completion(client)
  local caps = client.server_capabilities or {}
  M.inline_provider[client.id] = caps.inlineCompletionProvider
  if config.get().renderer == 'sparkls' then
    caps.inlineCompletionProvider = nil
  end
end

--- Whether Neovim's built-in inline completion is on for sparkls in `buf` (only possible on 0.12+).
---@param client vim.lsp.Client
---@param buf integer
---@return boolean
function M.builtin_active(client, buf)
  local builtin = vim.lsp.inline_completion
  return builtin ~= nil
    and client:supports_method('textDocument/inlineCompletion', buf)
    and builtin.is_enabled({ bufnr = buf, client_id = client.id })
end

---@param buf integer
---@return string?
local function root_dir(buf)
  local name = api.nvim_buf_get_name(buf)
  return vim.fs.root(buf, config.get().root_markers) or (name ~= '' and vim.fs.dirname(name)) or vim.uv.cwd()
end

--- Start the server for `buf`, or attach `buf` to the one already serving its root.
---@param buf integer
---@return integer? client_id
function M.start(buf)
  if vim.bo[buf].buftype ~= '' then
    return nil
  end
  local c = config.get()
  return vim.lsp.start({
    name = M.name,
    cmd = c.cmd,
    cmd_env = c.cmd_env,
    root_dir = root_dir(buf),
    init_options = c.settings,
    capabilities = M.capabilities(),
    handlers = M.handlers,
    on_init = function(client)
      M.own_inline_completion(client)
    end,
    on_exit = function(_, _, client_id)
      M.status[client_id] = nil
      M.inline_provider[client_id] = nil
    end,
  }, {
    bufnr = buf,
    reuse_client = function(client, cfg)
      return client.name == cfg.name and client.root_dir == cfg.root_dir and not client:is_stopped()
    end,
  })
end

---@param buf? integer
---@return vim.lsp.Client?
function M.client(buf)
  return vim.lsp.get_clients({ name = M.name, bufnr = buf })[1]
end

--- `workspace/executeCommand` on the sparkls client of `buf`.
---@param buf? integer
---@param command string
---@param arguments table
---@param callback? fun(err: lsp.ResponseError?, result: any)
---@return boolean sent
function M.execute(buf, command, arguments, callback)
  local client = M.client(buf)
  if not client then
    return false
  end
  client:request('workspace/executeCommand', { command = command, arguments = arguments }, function(err, result)
    if callback then
      callback(err, result)
    end
  end, buf)
  return true
end

return M
