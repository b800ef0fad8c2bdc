"""The half-written handler the editor tests type into: the fixture's pkg/handlers.py repeats its pattern,
so the n-gram core completes the blank last line with RETURN."""

DRAFT = (
    "def handle_delete(request, store):\n"
    "    payload = request.json()\n"
    "    record = store.delete(payload)\n"
    '    log.info("deleted %s", record.id)\n'
    "    \n"
)
RETURN = 'return {"status": "ok", "id": record.id}'
