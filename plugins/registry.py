"""Find backends through the ``sparkls.backends`` entry-point group and keep a broken one from
ever taking the server down.

A distribution offers backends in its ``pyproject.toml``; sparkls registers its own the
same way::

    [project.entry-points."sparkls.backends"]
    groq-lpu = "sparkls_groq_lpu:GroqLPU"

Each entry point names a backend class (or any callable returning a backend). Loading it,
building it, reading its ``priority`` and a probe timeline all run inside ``try``: a failure
is logged and shown by ``sparkls backends list``, and the backend is marked unavailable. At
run time :meth:`Host.timeline` checks every answer and falls back to ``local`` on nonsense
or an exception. Selection: the name asked for, else ``$SPARKLS_BACKEND``, else the viable
backend with the highest priority. ``SPARKLS_DISABLE_PLUGIN_AUTOLOAD=1`` loads only the
built-ins (for tests), like pytest's ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterable

from sparkls.plugins.api import Backend, ModelSpec, Request, Timeline, check_timeline

log = logging.getLogger(__name__)

GROUP = "sparkls.backends"
DISABLE_AUTOLOAD = "SPARKLS_DISABLE_PLUGIN_AUTOLOAD"
SELECT = "SPARKLS_BACKEND"
FALLBACK = "local"
BUILTIN_DIST = "sparkls"

# A small request every backend must answer sanely before it is offered.
PROBE = Request(
    model=ModelSpec(name="probe-8b", params=8e9, layers=32, hidden=4096, kv_bytes_per_token=131072),
    prompt_tokens=256,
    new_tokens=8,
)


@dataclass
class Entry:
    """One discovered backend: where it came from and whether it can be used."""

    name: str
    dist: str  # "name version" of the distribution declaring it
    target: str  # the entry point's "module:attr"
    factory: Any = None
    backend: Backend | None = None
    available: bool = False
    reason: str = ""
    priority: float = float("-inf")

    @property
    def builtin(self) -> bool:
        return self.dist.split(" ")[0] == BUILTIN_DIST


def _autoload() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD, "").lower() in ("", "0", "false", "no")


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


class Host:
    """The registry of backends for one server or command (cheap to rebuild)."""

    def __init__(self, autoload: bool | None = None, disabled: Iterable[str] = ()) -> None:
        self.autoload = _autoload() if autoload is None else autoload
        self.disabled = set(disabled)
        self.entries: dict[str, Entry] = {}
        eps = metadata.entry_points(group=GROUP)
        # Built-ins first, so a third-party plugin can never take a built-in's name.
        for ep in sorted(eps, key=lambda ep: not (ep.dist and ep.dist.name == BUILTIN_DIST)):
            self._add(ep)

    def _add(self, ep: metadata.EntryPoint) -> None:
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
        entry = Entry(ep.name, dist, ep.value)
        key = ep.name
        if key in self.entries:
            if self.entries[key].target == ep.value:
                return  # the same distribution seen twice on sys.path
            key = f"{ep.name} ({dist})"
            entry.reason = f"name clash with {self.entries[ep.name].dist}"
            self.entries[key] = entry
            log.warning("backend %s from %s ignored: %s", ep.name, dist, entry.reason)
            return
        self.entries[key] = entry
        if not (entry.builtin or self.autoload):
            entry.reason = f"third-party autoload off ({DISABLE_AUTOLOAD})"
        elif ep.name in self.disabled:
            entry.reason = "disabled in settings"
        else:
            self._start(entry, ep)

    def _start(self, entry: Entry, ep: metadata.EntryPoint) -> None:
        stage = "import"
        try:
            entry.factory = ep.load()
            stage = "start"
            backend = entry.factory()
            stage = "viability"
            entry.priority = float(backend.priority)  # raises RuntimeError when not viable
            stage = "probe"
            check_timeline(backend.timeline(PROBE, 0), PROBE)
        except Exception as e:
            entry.reason = f"{stage} failed: {_describe(e)}"
            log.exception("backend %s (%s) unavailable: %s", entry.name, entry.dist, entry.reason)
            return
        entry.backend, entry.available = backend, True

    # -- selection -------------------------------------------------------------------------

    def names(self, available: bool = True) -> list[str]:
        """Backend names, best priority first."""
        es = sorted(self.entries.values(), key=lambda e: (-e.priority, e.name))
        return [e.name for e in es if e.available or not available]

    def mark_unavailable(self, name: str, reason: str) -> None:
        if (e := self.entries.get(name)) and name != FALLBACK:
            e.available, e.reason = False, reason
            log.error("backend %s marked unavailable: %s", name, reason)

    def get(self, name: str | None = None, overrides: dict | None = None, strict: bool = False) -> Backend:
        """The backend called ``name`` (``"name:variant"`` picks a part or release), falling back.

        Without a name: ``$SPARKLS_BACKEND``, else the viable backend of highest priority.
        An unknown, unavailable or unbuildable backend yields ``local`` (logged), or raises
        ValueError with the reason when ``strict``.
        """
        name = name or os.environ.get(SELECT) or next(iter(self.names()), FALLBACK)
        base, _, variant = name.partition(":")
        e = self.entries.get(base)
        try:
            if e is None or not e.available:
                raise ValueError(e.reason if e else "not installed")
            if not variant and not overrides:
                return e.backend
            return e.factory(variant=variant, overrides=overrides)
        except Exception as err:
            why = str(err) if isinstance(err, ValueError) else _describe(err)
            if strict or base == FALLBACK:
                raise ValueError(f"backend {name}: {why}") from err
            log.warning("backend %s unavailable (%s); using %s", name, why, FALLBACK)
            return self.get(FALLBACK)

    def timeline(self, name: str | None, request: Request, seed: int = 0, backend: Backend | None = None) -> Timeline:
        """Ask a backend for a timeline; on an exception or nonsense, mark it and ask ``local``.

        ``Timeline.backend`` tells which backend actually answered.
        """
        b = backend or self.get(name)
        try:
            return check_timeline(b.timeline(request, seed), request)
        except Exception as e:
            if b.name == FALLBACK:
                raise
            self.mark_unavailable(b.name, f"run failed: {_describe(e)}")
            return check_timeline(self.get(FALLBACK).timeline(request, seed), request)


_default: Host | None = None


def host() -> Host:
    """The process-wide :class:`Host`, built on first use."""
    global _default
    if _default is None:
        _default = Host()
    return _default


def reset() -> None:
    """Forget the process-wide host (tests, or after installing a plugin)."""
    global _default
    _default = None
