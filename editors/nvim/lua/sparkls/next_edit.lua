-- Next edits (`textDocument/copilotInlineEdit`, docs/protocol.md): after an edit, sparkls proposes the
-- related edit elsewhere (the same rename, the same added argument, the same line change). It is drawn at
-- its location: the text it removes struck through, the text it inserts as virtual text. The first <Tab>
-- jumps there, the second applies it (one undo step), and the next one is offered (Tab-Tab chaining).

local api = vim.api
local config = require('sparkls.config')
local lsp = require('sparkls.lsp')

local M = {}

M.ns = api.nvim_create_namespace('sparkls.next_edit')
M.METHOD = 'textDocument/copilotInlineEdit'

---@class sparkls.NextEdit
---@field client_id integer
---@field edit table the server's edit: text, range, textDocument {uri, version}, command
---@field row integer 0-based start row
---@field col integer byte column of the start
---@field end_row integer
---@field end_col integer
---@field version integer the buffer version it applies to

---@type table<integer, sparkls.NextEdit>
local state = {}
---@type table<integer, integer> the id of the request in flight, by buffer
local pending = {}
local timers = require('sparkls.debounce').new()

local function version(buf)
  return vim.lsp.util.buf_versions[buf] or api.nvim_buf_get_changedtick(buf)
end

local function emit(buf, s)
  api.nvim_exec_autocmds('User', {
    pattern = 'SparklsNextEdit',
    modeline = false,
    data = { buf = buf, edit = s and s.edit or nil },
  })
end

--- Remove the drawn next edit of `buf` (nothing is told to the server).
---@param buf integer
function M.clear(buf)
  local had = state[buf] ~= nil
  state[buf] = nil
  if api.nvim_buf_is_valid(buf) then
    api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  end
  if had then
    emit(buf, nil)
  end
end

---@param buf? integer
---@return boolean
function M.visible(buf)
  buf = buf or api.nvim_get_current_buf()
  local s = state[buf]
  return s ~= nil and s.version == version(buf)
end

--- The shown next edit of `buf` (the server's edit table), or nil.
---@param buf? integer
function M.get(buf)
  local s = state[buf or api.nvim_get_current_buf()]
  return s and s.edit
end

local function byte_col(buf, row, character, encoding)
  local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1]
  if not line then
    return nil
  end
  local ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  return ok and col or #line
end

local function draw(buf, s)
  api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  local c = config.get().next_edit
  if s.end_row > s.row or s.end_col > s.col then
    api.nvim_buf_set_extmark(buf, M.ns, s.row, s.col, {
      end_row = s.end_row,
      end_col = s.end_col,
      hl_group = c.hl_delete,
      priority = 5000,
    })
  end
  local lines = vim.split(s.edit.text, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], c.hl_add } }
  end
  api.nvim_buf_set_extmark(buf, M.ns, s.end_row, s.end_col, {
    virt_text = lines[1] ~= '' and { { lines[1], c.hl_add } } or nil,
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    priority = 5000,
  })
end

---@param buf integer
---@param client vim.lsp.Client
---@param edit table
local function show(buf, client, edit)
  local r = edit.range
  local row, end_row = r.start.line, r['end'].line
  local col = byte_col(buf, row, r.start.character, client.offset_encoding)
  local end_col = byte_col(buf, end_row, r['end'].character, client.offset_encoding)
  if not col or not end_col then
    return
  end
  local s = {
    client_id = client.id,
    edit = edit,
    row = row,
    col = col,
    end_row = end_row,
    end_col = end_col,
    version = edit.textDocument and edit.textDocument.version or version(buf),
  }
  state[buf] = s
  draw(buf, s)
  client:notify('textDocument/didShowInlineEdit', { item = edit })
  emit(buf, s)
end

--- Ask the server for the next edits of the current buffer at the cursor.
---@param buf? integer
function M.request(buf)
  buf = buf or api.nvim_get_current_buf()
  local client = lsp.client(buf)
  if not client or not config.get().next_edit.enabled or api.nvim_get_current_buf() ~= buf then
    return
  end
  if pending[buf] then
    client:cancel_request(pending[buf])
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.textDocument.version = version(buf)
  local asked = params.textDocument.version
  local id ---@type integer?
  local ok
  ok, id = client:request(M.METHOD, params, function(err, result)
    if pending[buf] ~= id then
      return -- superseded by a newer request
    end
    pending[buf] = nil
    if err or not api.nvim_buf_is_valid(buf) or version(buf) ~= asked then
      return -- stale: the buffer changed meanwhile
    end
    M.clear(buf)
    local edit = result and result.edits and result.edits[1]
    if edit and (not edit.textDocument or edit.textDocument.version == asked) then
      show(buf, client, edit)
    end
  end, buf)
  pending[buf] = ok and id or nil
end

--- (Re)start the pause before asking.
---@param buf integer
local function schedule(buf)
  timers:run(buf, config.get().next_edit.debounce_ms, function()
    if api.nvim_buf_is_valid(buf) and api.nvim_get_current_buf() == buf then
      M.request(buf)
    end
  end)
end

--- <Tab> while a next edit is shown: jump to it, or, with the cursor on it, apply it and ask for the next.
---@return boolean acted
function M.tab()
  local buf = api.nvim_get_current_buf()
  local s = state[buf]
  if not s or s.version ~= version(buf) then
    return false
  end
  local cursor = api.nvim_win_get_cursor(0)
  if cursor[1] - 1 ~= s.row or cursor[2] ~= s.col then
    api.nvim_win_set_cursor(0, { s.row + 1, s.col })
    return true
  end
  M.apply(buf)
  return true
end

--- Apply the shown next edit of `buf` as one undo step, report it, and ask for the next.
---@param buf? integer
---@return boolean applied
function M.apply(buf)
  buf = buf or api.nvim_get_current_buf()
  local s = state[buf]
  if not s or s.version ~= version(buf) then
    return false -- never apply an edit to a text it was not computed for
  end
  M.clear(buf)
  local lines = vim.split(s.edit.text, '\n', { plain = true })
  vim.o.undolevels = vim.o.undolevels -- :help undo-break: the edit is its own undo step
  api.nvim_buf_set_text(buf, s.row, s.col, s.end_row, s.end_col, lines)
  vim.o.undolevels = vim.o.undolevels
  local last = #lines == 1 and s.col + #lines[1] or #lines[#lines]
  api.nvim_win_set_cursor(0, { s.row + #lines, last })
  local command = s.edit.command
  if command and command.command then
    lsp.execute(buf, command.command, command.arguments or {})
  end
  M.request(buf) -- chaining: the applied edit continues the pattern
  return true
end

--- Hide the shown next edit and tell the server it was turned down.
---@param buf? integer
function M.dismiss(buf)
  buf = buf or api.nvim_get_current_buf()
  local s = state[buf]
  M.clear(buf)
  local args = s and s.edit.command and s.edit.command.arguments
  local client = s and vim.lsp.get_client_by_id(s.client_id)
  if client and args and args[1] and args[1].id then
    client:notify('sparkls/didDismiss', { id = args[1].id, reason = 'dismissed' })
  end
end

---@param buf integer
function M.attach(buf)
  local group = api.nvim_create_augroup('sparkls.next_edit.' .. buf, { clear = true })
  api.nvim_create_autocmd({ 'TextChanged', 'TextChangedI', 'InsertLeave' }, {
    group = group,
    buffer = buf,
    callback = function()
      if state[buf] and state[buf].version ~= version(buf) then
        M.clear(buf) -- computed for another text
      end
      schedule(buf)
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = group,
    buffer = buf,
    callback = function()
      M.detach(buf)
    end,
  })
end

---@param buf integer
function M.detach(buf)
  M.clear(buf)
  pcall(api.nvim_del_augroup_by_name, 'sparkls.next_edit.' .. buf)
  timers:close(buf)
  pending[buf] = nil
end

return M
