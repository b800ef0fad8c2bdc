"""A minimal Server-Sent Events reader (the WHATWG ``text/event-stream`` format).

OpenAI-compatible engines (vLLM, SGLang, TensorRT-LLM, llama.cpp's server, hosted APIs)
stream completions as ``data: {json}`` lines separated by blank lines and end with
``data: [DONE]``. :func:`events` turns a stream of raw lines into :class:`Event` values:
``field: value`` lines accumulate (one leading space after the colon is dropped), several
``data`` lines of one event are joined with ``\\n``, lines starting with ``:`` are comments
(keep-alives) and a blank line dispatches the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator


class EventTooLarge(ValueError):
    """An event's data grew past the reader's limit (an engine sending data lines without end)."""


@dataclass(frozen=True)
class Event:
    data: str
    event: str = "message"
    id: str = ""


def events(lines: Iterable[bytes | str], max_bytes: int | None = None) -> Iterator[Event]:
    """Events from raw lines (with or without their line endings); a last event without a
    trailing blank line is still dispatched when the stream ends. With ``max_bytes``, an event
    whose data lines add up to more raises :class:`EventTooLarge`."""
    data: list[str] = []
    size = 0
    kind, ident = "", ""
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line:
            if data:
                yield Event("\n".join(data), kind or "message", ident)
            data, kind, size = [], "", 0
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            size += len(value) + 1
            if max_bytes is not None and size > max_bytes:
                raise EventTooLarge(f"a stream event over {max_bytes} bytes")
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id" and "\0" not in value:
            ident = value
        # "retry" and unknown fields are ignored, as the spec says
    if data:
        yield Event("\n".join(data), kind or "message", ident)
