"""Send sparkls's log records to the editor's LSP log (`window/logMessage`) as well as stderr."""

from __future__ import annotations

import logging
import re
import threading

from lsprotocol import types

_LEVELS = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
}


# scheme://user:pass@host/path?query#fragment: userinfo, query and fragment may hold keys.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s/@'\"<>]*@)?([^\s?#'\"<>]*)([?#][^\s'\"<>]*)?")


def scrub_urls(text: str) -> str:
    """``text`` with every URL's userinfo, query and fragment hidden."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: m.group(1) + m.group(3) + ("?…" if m.group(4) else ""), text)


class ScrubFilter(logging.Filter):
    """Rewrites a record's message with :func:`scrub_urls` (install it on every handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_urls(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class LspLogHandler(logging.Handler):
    """Forwards records at INFO and above; safe to call from worker threads."""

    def __init__(self, server) -> None:
        super().__init__(logging.INFO)
        self.server = server
        self._busy = threading.local()
        self.addFilter(ScrubFilter())

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "on", False):
            return  # a failure while sending must not log itself forever
        self._busy.on = True
        try:
            kind = _LEVELS.get(record.levelno, types.MessageType.Log if record.levelno < logging.INFO else types.MessageType.Error)
            params = types.LogMessageParams(type=kind, message=self.format(record))
            loop = self.server.loop
            if loop is not None and threading.get_ident() != self.server.loop_thread:
                loop.call_soon_threadsafe(self.server.window_log_message, params)
            else:
                self.server.window_log_message(params)
        except Exception:
            pass
        finally:
            self._busy.on = False
