-- :Sparkls status | backend [name] | toggle | suggest | dismiss  (setup: require('sparkls').setup{})
if vim.g.loaded_sparkls then
  return
end
vim.g.loaded_sparkls = true

vim.api.nvim_create_user_command('Sparkls', function(o)
  require('sparkls.command').run(o.fargs)
end, {
  nargs = '*',
  desc = 'sparkls: status | backend [name] | toggle | suggest | dismiss',
  complete = function(arglead, line)
    return require('sparkls.command').complete(arglead, line)
  end,
})
