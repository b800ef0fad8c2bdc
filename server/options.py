"""sparkls settings: a typed, defaulted tree read from initializationOptions and `workspace/configuration`.

Bad values never stop the server: the error is reported and the defaults stay.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec


class IndexOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Bounds on the workspace scan that feeds the n-gram model."""

    enabled: bool = True
    max_files: int = 5000
    max_file_bytes: int = 512_000
    max_total_bytes: int = 16_000_000
    max_seconds: float = 20.0


class ModelOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    path: str | None = None  # a llama-architecture GGUF; None = the packaged SmolLM2 if installed
    engine: Literal["auto", "ngram", "neural", "remote"] = "auto"
    # Prefill an opened document's KV cache in the background (the text up to its end), so its
    # first completion does not wait for a cold prefill; any completion request stops it.
    warm_on_open: bool = True


class ContextOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """What goes into a suggestion's prompt, and what may be suggested (docs/quality.md measures each)."""

    # Tokens of the document before the cursor in the prompt (SmolLM2 was trained with 8k). 512: on the
    # quality bench's TUNE packages 1k, 2k and 4k were no better (docs/quality.md) and cost prefill and memory.
    window: Annotated[int, msgspec.Meta(ge=128, le=6144)] = 512
    # At the end of a line with code, suggest the next line(s) when the model opens one.
    next_line: bool = True
    # Definitions of the names the document imports and similar chunks of other workspace files.
    workspace: bool = True
    workspace_tokens: Annotated[int, msgspec.Meta(ge=0, le=2048)] = 384
    # Choose between the model's continuation and a copy of what the document or workspace already has.
    copy: bool = True


class Options(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """The `sparkls` settings section."""

    # Which completion methods to advertise: "auto" = inline completion to clients that
    # declare it and `textDocument/completion` to the others.
    advertise: Literal["auto", "inline", "completion", "both"] = "auto"
    max_tokens: int = 64
    # Wait this long before decoding an automatic (as-you-type) request; invoked ones never wait.
    # "auto": no wait when the backend answers before the next keystroke, else wait for a pause.
    debounce_ms: int | Literal["auto"] = "auto"
    max_lines: int = 12
    backend: str = "local"  # whose cadence paces the stream: local, cerebras-wse3, nvidia-blackwell, …
    served_model: str = "llama-3.1-8b"  # the model a modelled backend is imagined to serve (name or TOML)
    index: IndexOptions = msgspec.field(default_factory=IndexOptions)
    # An OpenAI-compatible server for model.engine = "remote": {"url", "model", "api_key_env", ...}
    # (see backends/remote.py RemoteConfig; the key itself is read from the named variable).
    remote: dict[str, Any] | None = None
    model: ModelOptions = msgspec.field(default_factory=ModelOptions)
    context: ContextOptions = msgspec.field(default_factory=ContextOptions)
    # Glob patterns (gitignore-like, relative to the workspace root, or file names) never read into a prompt.
    exclude: list[str] = msgspec.field(default_factory=list)


def parse_options(raw: Any, base: Options | None = None) -> tuple[Options, str | None]:
    """Options from a JSON-like value (``{"sparkls": {...}}`` or the section itself).

    Returns the options and an error message; on error the options are ``base`` (or defaults).
    """
    base = base or Options()
    if raw is None:
        return base, None
    if hasattr(raw, "_asdict"):  # pygls hands non-LSP payloads over as namedtuples
        raw = _plain(raw)
    if isinstance(raw, dict) and isinstance(raw.get("sparkls"), dict):
        raw = raw["sparkls"]
    if not isinstance(raw, dict):
        return base, f"sparkls settings must be an object, got {type(raw).__name__}"
    merged = msgspec.to_builtins(base)
    _merge(merged, raw)
    try:
        return msgspec.convert(merged, Options), None
    except msgspec.ValidationError as exc:
        return base, f"invalid sparkls settings ({exc}); keeping the previous ones"


def _merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
