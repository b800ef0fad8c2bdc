"""When to decode and how fast to show it: the backend's timeline and a debounce that adapts.

A slow backend waits for a pause in typing; one whose answer lands before the next key
(a WSE-3-class backend) answers every keystroke. The typing rate is measured per document.
"""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache

import tomllib
from pathlib import Path

from sparkls.decode.engine import CompletionContext
from sparkls.plugins import AUTO, FALLBACK, Request, host
from sparkls.plugins.api import ModelSpec, SpecError, Timeline, builtin_models, load_model, load_spec
from sparkls.server import safe_files

log = logging.getLogger("sparkls")

CHARS_PER_TOKEN = 3.5  # code under a BPE vocabulary; only sizes the modelled request
PROMPT_CHARS = 8000  # what a served model would be sent as prompt
MAX_DEBOUNCE = 0.4


class TypingRate:
    """Mean gap between keystrokes (edits), as an exponential moving average over recent typing."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.gap: float | None = None

    def keystroke(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.last is not None:
            gap = now - self.last
            if gap < 2.0:  # longer is a pause, not a typing rate
                self.gap = gap if self.gap is None else 0.7 * self.gap + 0.3 * gap
        self.last = now


def adaptive_debounce(ttft: float, gap: float | None) -> float:
    """Seconds to wait before decoding an as-you-type request.

    If the backend's first token lands well before the user's next keystroke, answering
    every keystroke is free: no wait. Otherwise wait a little longer than the typing gap,
    so decoding starts when the user pauses rather than for every key.
    """
    if gap is None:
        return 0.05
    if ttft <= 0.5 * gap:
        return 0.0
    return min(max(1.5 * gap, 0.05), MAX_DEBOUNCE)


@lru_cache(maxsize=16)
def served_model(name: str) -> ModelSpec:
    """A built-in served model by name. TOML files named in settings are read by
    :func:`served_model_file` (off the event loop, through safe_files), never here."""
    if name in builtin_models():
        return load_model(name)
    return load_model("smollm2-135m")


SERVED_MODEL_BYTES = 256_000


def served_model_file(path: str, roots: list[Path]) -> ModelSpec:
    """A served model described by a TOML file inside ``roots`` (blocking; run it in a worker).

    Raises SpecError naming the file and why (outside the workspace, not a regular file, too
    large, not TOML, invalid)."""
    file = Path(path).expanduser()
    if not file.is_absolute() and roots:
        file = roots[0] / file  # relative to the workspace
    text = safe_files.read_text(file, SERVED_MODEL_BYTES, roots)
    if isinstance(text, safe_files.Skip):
        raise SpecError(f"served model file {text}")
    try:
        return load_spec(ModelSpec, tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"served model file {path}: {exc}") from None


class Pacer:
    """The active backend and the timelines it gives for requests."""

    def __init__(self) -> None:
        self.setting = AUTO  # the `backend` setting: a backend's name, or "auto"
        self.remote = False  # a remote engine serves: "local" pacing means its own cadence
        self.model_name = "llama-3.1-8b"
        self.model_spec: ModelSpec | None = None  # read from a TOML file (served_model_file); wins over the name
        self.seed = 0
        self.last_prompt: dict[str, str] = {}  # per document, for the prefix a server would have cached

    @property
    def backend_name(self) -> str:
        """The backend the setting means now ("auto": ``$SPARKLS_BACKEND``, else the highest priority)."""
        name = host().choose(self.setting)
        return "remote" if self.remote and name == FALLBACK else name

    @property
    def backend(self):
        return host().get(self.backend_name)

    def timeline(self, uri: str, ctx: CompletionContext) -> Timeline:
        prompt = ctx.prefix[-PROMPT_CHARS:]
        previous = self.last_prompt.get(uri, "")
        self.last_prompt[uri] = prompt
        shared = len(os.path.commonprefix((previous, prompt))) if previous else 0
        request = Request(
            model=self.model_spec or served_model(self.model_name),
            prompt_tokens=max(1, round(len(prompt) / CHARS_PER_TOKEN)),
            cached_tokens=round(shared / CHARS_PER_TOKEN),
            new_tokens=max(1, ctx.max_tokens),
        )
        self.seed += 1
        return host().timeline(None, request, seed=self.seed, backend=self.backend)

    def measured(self, tokens: int, seconds: float) -> None:
        """Tell the ``local`` backend how fast this machine decoded."""
        if tokens > 1 and seconds > 0:
            local = host().get("local")
            if hasattr(local, "update"):
                local.update(tokens_per_s=tokens / seconds)
