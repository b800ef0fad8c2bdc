-- Ghost text: ask sparkls for an inline completion, draw it with extmarks (inline virtual text
-- on the cursor's line, virtual lines below), grow it as `sparkls/inlineCompletionStream`
-- notifications arrive, accept it (whole, word, line) or dismiss it (docs/protocol.md).

local api = vim.api
local config = require('sparkls.config')
local lsp = require('sparkls.lsp')

local M = {}

M.ns = api.nvim_create_namespace('sparkls.ghost')
M.enabled = true

local METHOD = 'textDocument/inlineCompletion'
local MAX_TYPED_AHEAD = 200 -- characters typed past the suggestion's start before it is given up

---@class sparkls.Suggestion
---@field client_id integer
---@field request_id integer the `textDocument/inlineCompletion` request it answers
---@field stream_id? string from the item's `sparkls.accept` command
---@field index integer which item (always 0: sparkls sends one)
---@field row integer 0-based line where the item's range starts
---@field col integer byte column where the item's range starts
---@field text string the item's whole insertText so far (it repeats the word typed before the cursor)
---@field done boolean the stream has ended (always true for a plain, unstreamed answer)
---@field shown? string the ghost text last drawn (the part of `text` not yet typed)

---@type table<integer, sparkls.Suggestion>
local state = {}
---@type table<integer, {client_id: integer, id: integer, early: table[]}>
local pending = {}
local timers = require('sparkls.debounce').new()
--- Per buffer: the changedtick and cursor seen last, to tell a pure cursor move from typing.
---@type table<integer, {tick: integer, cursor: integer[]}>
local seen = {}
--- Per buffer: the changedtick right after a partial accept. Its TextChangedI asks for nothing new
--- while the rest of the suggestion still matches (the rest stays shown).
---@type table<integer, integer>
local partial_tick = {}

local function emit(buf, s, ghost)
  api.nvim_exec_autocmds('User', {
    pattern = 'SparklsGhost',
    modeline = false,
    data = {
      buf = buf,
      text = ghost,
      full = s and s.text or '',
      stream_id = s and s.stream_id,
      done = s == nil or s.done,
    },
  })
end

local function remember(buf)
  seen[buf] = { tick = api.nvim_buf_get_changedtick(buf), cursor = api.nvim_win_get_cursor(0) }
end

local function cancel_pending(buf)
  local p = pending[buf]
  pending[buf] = nil
  local client = p and vim.lsp.get_client_by_id(p.client_id)
  if client then
    client:cancel_request(p.id)
  end
end

--- Remove the ghost of `buf` without telling the server anything.
---@param buf integer
local function hide(buf)
  local s = state[buf]
  state[buf] = nil
  if api.nvim_buf_is_valid(buf) then
    api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  end
  if s and s.shown and s.shown ~= '' then
    emit(buf, nil, '')
  end
end

--- Hide the suggestion of `buf` and tell the server it was dismissed (`sparkls/didDismiss`).
---@param buf? integer
---@param reason? "dismissed"|"typedPast"
function M.dismiss(buf, reason)
  buf = buf or api.nvim_get_current_buf()
  local s = state[buf]
  timers:stop(buf)
  cancel_pending(buf)
  hide(buf)
  if s and s.stream_id and s.shown ~= nil then
    local client = vim.lsp.get_client_by_id(s.client_id)
    if client then
      client:notify('sparkls/didDismiss', { streamId = s.stream_id, reason = reason or 'dismissed' })
    end
  end
end

--- The text between the suggestion's start and the cursor, or nil when the cursor is before it.
---@param buf integer
---@param s sparkls.Suggestion
---@return string?, integer, integer
local function typed_since(buf, s)
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  if row < s.row or (row == s.row and col < s.col) or row - s.row > 50 then
    return nil, row, col
  end
  local ok, lines = pcall(api.nvim_buf_get_text, buf, s.row, s.col, row, col, {})
  return ok and table.concat(lines, '\n') or nil, row, col
end

--- Draw what is left of the suggestion after what was typed; dismiss it once the typing left it.
---@param buf integer
function M.render(buf)
  local s = state[buf]
  if not s or api.nvim_get_current_buf() ~= buf then
    return
  end
  local typed, row, col = typed_since(buf, s)
  local ghost
  if typed and s.text:sub(1, #typed) == typed then
    ghost = s.text:sub(#typed + 1)
  elseif typed and not s.done and #typed <= #s.text + MAX_TYPED_AHEAD and typed:sub(1, #s.text) == s.text then
    ghost = '' -- typed past what has streamed so far, and along it: wait for more
  else
    return M.dismiss(buf, 'typedPast')
  end
  api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
  local was = s.shown
  s.shown = ghost
  if ghost == '' then
    if s.done then
      state[buf] = nil -- typed all of it
    end
    if was and was ~= '' then
      emit(buf, s, '')
    end
    return
  end
  local hl = config.get().suggestion.hl_group
  local lines = vim.split(ghost, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], hl } }
  end
  api.nvim_buf_set_extmark(buf, M.ns, row, col, {
    virt_text = { { lines[1], hl } },
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
    priority = 5000,
  })
  if s.stream_id and not s.reported then
    s.reported = true -- textDocument/didShowCompletion, once per suggestion (docs/protocol.md)
    local client = vim.lsp.get_client_by_id(s.client_id)
    if client then
      client:notify('textDocument/didShowCompletion', {
        item = { insertText = s.text, command = { command = 'sparkls.accept', arguments = { { streamId = s.stream_id, index = s.index } } } },
      })
    end
  end
  emit(buf, s, ghost)
end

---@param buf integer
---@param client vim.lsp.Client
---@param item lsp.InlineCompletionItem
---@param request_id integer
local function suggest(buf, client, item, request_id)
  local text = item.insertText
  if type(text) == 'table' then
    text = text.value -- a snippet: shown and inserted as plain text
  end
  local row, col
  if item.range then
    row = item.range.start.line
    local line = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
    local ok, byte = pcall(vim.str_byteindex, line, client.offset_encoding, item.range.start.character, false)
    col = ok and byte or #line
  else
    local cursor = api.nvim_win_get_cursor(0)
    row, col = cursor[1] - 1, cursor[2]
  end
  local args = item.command and item.command.command == 'sparkls.accept' and item.command.arguments
  local arg = args and args[1] or {}
  local streamed = client.server_capabilities.experimental
    and vim.tbl_get(client.server_capabilities.experimental, 'sparkls', 'inlineCompletionStream')
  local old = state[buf]
  state[buf] = {
    client_id = client.id,
    request_id = request_id,
    stream_id = arg.streamId,
    index = arg.index or 0,
    row = row,
    col = col,
    text = text or '',
    done = not streamed,
    shown = old and old.shown, -- a dismissal still reports the ghost shown until now
    reported = old and old.stream_id == arg.streamId and old.reported,
  }
end

--- Notification `sparkls/inlineCompletionStream`: the whole text so far of a suggestion.
---@param params table
---@param ctx lsp.HandlerContext
function M.on_stream(params, ctx)
  for _, p in pairs(pending) do
    if p.client_id == ctx.client_id and p.id == params.requestId then
      table.insert(p.early, params) -- ahead of its response: applied when that arrives
      return
    end
  end
  for buf, s in pairs(state) do
    if s.client_id == ctx.client_id and (s.stream_id == params.streamId or s.request_id == params.requestId) then
      if params.cancelled then
        -- superseded: by our own newer request when one is pending (its answer takes over)
        s.done = s.done or pending[buf] == nil
        return
      end
      if type(params.text) == 'string' then
        s.text = params.text
      end
      s.done = s.done or params.done == true
      M.render(buf)
      return
    end
  end
end

--- Ask the server for a suggestion at the cursor of the current buffer.
---@param kind? integer 1 = Invoked, 2 = Automatic (default)
function M.request(kind)
  local buf = api.nvim_get_current_buf()
  local client = lsp.client(buf)
  if not M.enabled or not client or config.get().renderer ~= 'sparkls' then
    return
  end
  cancel_pending(buf)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = kind or 2 }
  local id ---@type integer?
  local ok
  ok, id = client:request(METHOD, params, function(err, result)
    local p = pending[buf]
    if not p or p.id ~= id then
      return -- superseded
    end
    pending[buf] = nil
    if not api.nvim_buf_is_valid(buf) or api.nvim_get_current_buf() ~= buf or not api.nvim_get_mode().mode:find('^i') then
      return
    end
    local items = result and (result.items or result) or {}
    if err or not items[1] then
      return hide(buf) -- nothing (left) to suggest here
    end
    suggest(buf, client, items[1], id)
    for _, early in ipairs(p.early) do
      M.on_stream(early, { client_id = client.id })
    end
    M.render(buf)
  end, buf)
  if ok and id then
    pending[buf] = { client_id = client.id, id = id, early = {} }
  end
end

--- (Re)start the debounce before an automatic request.
---@param buf integer
local function schedule(buf)
  local opts = config.get().suggestion
  if not M.enabled or not opts.auto_trigger then
    return
  end
  timers:run(buf, opts.debounce_ms, function()
    if api.nvim_buf_is_valid(buf) and api.nvim_get_current_buf() == buf and api.nvim_get_mode().mode:find('^i') then
      M.request(2)
    end
  end)
end

---@param buf? integer
---@return boolean
function M.visible(buf)
  local s = state[buf or api.nvim_get_current_buf()]
  return s ~= nil and s.shown ~= nil and s.shown ~= ''
end

--- The ghost text shown in `buf` (nil when none).
---@param buf? integer
---@return string?
function M.text(buf)
  local s = state[buf or api.nvim_get_current_buf()]
  return s and s.shown ~= '' and s.shown or nil
end

---@param ghost string
---@param kind "full"|"word"|"line"
---@return string
local function part_of(ghost, kind)
  if kind == 'word' then
    return ghost:match('^%s*[%w_]+') or ghost:match('^%s*[^%w_%s]+') or ghost:match('^%s+') or ghost
  elseif kind == 'line' then
    return ghost:match('^\n?[^\n]*')
  end
  return ghost
end

--- Insert the suggestion (or its next word or line) at the cursor and report it (`sparkls.accept`).
---@param kind? "full"|"word"|"line"
---@return boolean accepted
function M.accept(kind)
  kind = kind or 'full'
  local buf = api.nvim_get_current_buf()
  local s = state[buf]
  if not s or not s.shown or s.shown == '' then
    return false
  end
  local part = part_of(s.shown, kind)
  local all = part == s.shown
  timers:stop(buf)
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local lines = vim.split(part, '\n', { plain = true })
  api.nvim_buf_set_text(buf, row, col, row, col, lines)
  api.nvim_win_set_cursor(0, { row + #lines, (#lines == 1 and col or 0) + #lines[#lines] })
  if s.stream_id then
    lsp.execute(buf, 'sparkls.accept', {
      { streamId = s.stream_id, index = s.index, acceptedChars = vim.fn.strchars(part), kind = kind },
    })
  end
  if all then
    cancel_pending(buf)
    hide(buf)
  else
    M.render(buf) -- the rest stays shown
    partial_tick[buf] = api.nvim_buf_get_changedtick(buf)
  end
  remember(buf)
  return true
end

--- Buffer-local autocmds once the sparkls client attaches to `buf`.
---@param buf integer
function M.attach(buf)
  local group = api.nvim_create_augroup('sparkls.buf.' .. buf, { clear = true })
  local function on(events, fn)
    api.nvim_create_autocmd(events, { group = group, buffer = buf, callback = fn })
  end
  on('InsertEnter', function()
    remember(buf)
    schedule(buf)
  end)
  on('TextChangedI', function()
    remember(buf)
    M.render(buf)
    local after_partial = partial_tick[buf] == api.nvim_buf_get_changedtick(buf)
    partial_tick[buf] = nil
    if after_partial and M.visible(buf) then
      return -- a partial accept, and the rest still matches: nothing new to ask for
    end
    schedule(buf)
  end)
  on('CursorMovedI', function()
    local last = seen[buf]
    local tick = api.nvim_buf_get_changedtick(buf)
    if last and last.tick == tick and not vim.deep_equal(last.cursor, api.nvim_win_get_cursor(0)) then
      M.dismiss(buf) -- the cursor moved without typing
    end
  end)
  on({ 'InsertLeave', 'BufLeave' }, function()
    M.dismiss(buf)
  end)
  on({ 'BufUnload', 'BufWipeout' }, function()
    M.detach(buf)
  end)
end

---@param buf integer
function M.detach(buf)
  M.dismiss(buf)
  pcall(api.nvim_del_augroup_by_name, 'sparkls.buf.' .. buf)
  timers:close(buf)
  seen[buf] = nil
  partial_tick[buf] = nil
end

--- Turn suggestions on or off everywhere (the server keeps running).
---@param on? boolean default: the opposite of now
---@return boolean enabled
function M.toggle(on)
  if on == nil then
    on = not M.enabled
  end
  M.enabled = on
  if not on then
    for buf in pairs(state) do
      M.dismiss(buf)
    end
  end
  return on
end

return M
