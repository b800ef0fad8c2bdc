"""sparkls settings: a typed, defaulted tree read from initializationOptions and `workspace/configuration`.

Bad values never stop the server: the error is reported and the defaults stay.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from sparkls.plugins.api import merge
from sparkls.server.messages import plain
from sparkls.server.user_config import USER_ONLY

# Bounds: a setting outside them is refused with a message naming it (and the previous
# settings stay), so no setting can make the server allocate, wait or scan without end.


def Count(hi: int):  # noqa: N802 - used as a type
    """An int in 0..hi."""
    return Annotated[int, msgspec.Meta(ge=0, le=hi)]


Name = Annotated[str, msgspec.Meta(max_length=256)]


class IndexOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Bounds on the workspace scan that feeds the n-gram model."""

    enabled: bool = True
    max_files: Count(100_000) = 5000
    max_file_bytes: Count(16_000_000) = 512_000
    max_total_bytes: Count(256_000_000) = 16_000_000
    max_seconds: Annotated[float, msgspec.Meta(ge=0, le=600)] = 20.0


class ModelOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    path: Annotated[str, msgspec.Meta(max_length=4096)] | None = None  # a llama GGUF; None = the packaged SmolLM2
    engine: Literal["auto", "ngram", "neural", "remote"] = "auto"
    # Prefill an opened document's KV cache in the background (the text up to its end), so its
    # first completion does not wait for a cold prefill; any completion request stops it.
    warm_on_open: bool = True


class GateOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """The show/no-show gate over completions (server/gate.py)."""

    enabled: bool = True
    threshold: float | None = None  # None: the fitted default in gate_weights.json
    learn: bool = True  # adapt to this user's accepts and rejects
    # The model's rewrites after an edit (next edits' third kind, server/rewrite.py) are shown when their own gate's
    # score reaches this; None: the fitted default in rewrite_gate.json (above 1: never).
    rewrite_threshold: float | None = None


class ContextOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """What goes into a suggestion's prompt, and what may be suggested (docs/quality.md measures each)."""

    # Tokens of the document before the cursor in the prompt (SmolLM2 was trained with 8k), counted as 3
    # characters each (code averages ~3.8 a real token): a cold document's window is 7/8 of it, 768 -> ~510 real
    # tokens. 768 with a 192-token workspace header prefills as many tokens as 512 with 384 did, and was better on
    # the quality bench's TUNE packages (docs/quality.md); 1k-4k with the larger header were no better there.
    window: Annotated[int, msgspec.Meta(ge=128, le=6144)] = 768
    # At the end of a line with code, suggest the next line(s) when the model opens one.
    next_line: bool = True
    # Definitions of the names the document imports and similar chunks of other workspace files.
    workspace: bool = True
    workspace_tokens: Annotated[int, msgspec.Meta(ge=0, le=2048)] = 192
    # Choose between the model's continuation and a copy of what the document or workspace already has.
    copy: bool = True


class BackendsOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """The plugin host's backends (plugins/registry.py)."""

    disabled: Annotated[list[Name], msgspec.Meta(max_length=256)] = msgspec.field(default_factory=list)  # never started


class Options(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """The `sparkls` settings section."""

    # Which completion methods to advertise: "auto" = inline completion to clients that
    # declare it and `textDocument/completion` to the others.
    advertise: Literal["auto", "inline", "completion", "both"] = "auto"
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 64
    # Wait this long before decoding an automatic (as-you-type) request; invoked ones never wait.
    # "auto": no wait when the backend answers before the next keystroke, else wait for a pause.
    debounce_ms: Annotated[int, msgspec.Meta(ge=0, le=5000)] | Literal["auto"] = "auto"
    # Whose cadence paces the stream: local, cerebras-wse3, nvidia-blackwell, … or "auto":
    # $SPARKLS_BACKEND, else the available backend of highest priority (local unless a plugin claims more).
    backend: Name = "auto"
    backends: BackendsOptions = msgspec.field(default_factory=BackendsOptions)
    served_model: Name = "llama-3.1-8b"  # the model a modelled backend is imagined to serve (name or TOML)
    index: IndexOptions = msgspec.field(default_factory=IndexOptions)
    # Options of the remote engine (model.engine = "remote") other than its destination and key:
    # timeouts, prompt_chars, ... (decode/remote/remote_client.py RemoteConfig). Its url and api_key_env
    # come only from the user's configuration (user_config.py).
    remote: dict[str, Any] | None = None
    model: ModelOptions = msgspec.field(default_factory=ModelOptions)
    gate: GateOptions = msgspec.field(default_factory=GateOptions)


    context: ContextOptions = msgspec.field(default_factory=ContextOptions)
    # Glob patterns (gitignore-like, relative to the workspace root, or file names) never read into a prompt.
    exclude: Annotated[list[Annotated[str, msgspec.Meta(max_length=1024)]], msgspec.Meta(max_length=1000)] = msgspec.field(default_factory=list)


def parse_options(raw: Any, base: Options | None = None) -> tuple[Options, str | None]:
    """Options from a JSON-like value (``{"sparkls": {...}}`` or the section itself).

    Returns the options and an error message; on error the options are ``base`` (or defaults).
    """
    base = base or Options()
    if raw is None:
        return base, None
    if hasattr(raw, "_asdict"):  # pygls hands non-LSP payloads over as namedtuples
        raw = plain(raw)
    if isinstance(raw, dict) and isinstance(raw.get("sparkls"), dict):
        raw = raw["sparkls"]
    if not isinstance(raw, dict):
        return base, f"sparkls settings must be an object, got {type(raw).__name__}"
    raw, refused = _without_user_only(raw)
    merged = merge(msgspec.to_builtins(base), raw)
    try:
        return msgspec.convert(merged, Options), refused
    except msgspec.ValidationError as exc:
        return base, f"invalid sparkls settings ({exc}); keeping the previous ones" + (f"; {refused}" if refused else "")


def _without_user_only(raw: dict) -> tuple[dict, str | None]:
    """``raw`` without the remote fields editor settings may not set, and a message naming them."""
    remote = raw.get("remote")
    if not isinstance(remote, dict):
        return raw, None
    banned = [k for k in remote if k in USER_ONLY or k in ("api_key", "key", "token")]
    if not banned:
        return raw, None
    kept = {k: v for k, v in remote.items() if k not in banned}
    message = (
        f"ignored remote.{', remote.'.join(banned)} from the editor's settings: where completions are sent "
        "and with which key come only from the user's configuration (~/.config/sparkls/config.toml or "
        "$SPARKLS_REMOTE_URL; see docs/security.md)"
    )
    return {**raw, "remote": kept}, message


