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
or an exception. Third-party code runs guarded (:func:`guarded`): in a worker thread, within a
time budget, with every exception caught — ``SystemExit`` and ``KeyboardInterrupt`` included —
so a plugin that exits, blocks or loops costs the server one budget, once, and is marked
unavailable.

Selection (:meth:`Host.choose`): the name asked for (the ``backend`` setting), or for
``"auto"`` ``$SPARKLS_BACKEND``, else the viable backend with the highest priority. Backends
named in the ``backends.disabled`` setting (:func:`set_disabled`) are never started or offered;
``SPARKLS_DISABLE_PLUGIN_AUTOLOAD=1`` loads only the built-ins (for tests), like pytest's
``PYTEST_DISABLE_PLUGIN_AUTOLOAD``.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterable

from sparkls.plugins.api import Backend, ModelSpec, Request, Timeline, check_timeline

log = logging.getLogger(__name__)

GROUP = "sparkls.backends"
DISABLE_AUTOLOAD = "SPARKLS_DISABLE_PLUGIN_AUTOLOAD"
SELECT = "SPARKLS_BACKEND"
AUTO = "auto"
FALLBACK = "local"
DISABLED = "disabled in settings"
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
    ep: metadata.EntryPoint | None = None
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


START_BUDGET_S = 2.0  # import, construction and probe of one third-party backend
CALL_BUDGET_S = 0.5  # one timeline (or variant) of a third-party backend, asked on the event loop
_pool: ThreadPoolExecutor | None = None


class PluginError(Exception):
    """Third-party code raised (anything, SystemExit included) or ran over its time budget."""


def _run_catching(fn: Callable, args: tuple, kwargs: dict) -> tuple[bool, Any]:
    try:
        return True, fn(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 - a plugin's SystemExit must not end the server
        return False, e


def guarded(fn: Callable, *args, budget: float = CALL_BUDGET_S, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` in a plugin thread; :class:`PluginError` if it raises anything or
    takes over ``budget`` seconds (the thread is then abandoned, still blocked)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sparkls-plugin")
    future = _pool.submit(_run_catching, fn, args, kwargs)
    try:
        ok, value = future.result(timeout=budget)
    except FutureTimeout:
        raise PluginError(f"took over {budget:g}s") from None
    if not ok:
        raise PluginError(_describe(value)) from (value if isinstance(value, Exception) else None)
    return value


def _trusted(obj: Any) -> bool:
    """sparkls's own backends run directly; anything else is a plugin's code."""
    return (getattr(obj, "__module__", None) or type(obj).__module__).startswith("sparkls.")


class Host:
    """The registry of backends for one server or command (cheap to rebuild)."""

    def __init__(self, autoload: bool | None = None, disabled: Iterable[str] = ()) -> None:
        self.autoload = _autoload() if autoload is None else autoload
        self.disabled = set(disabled)
        self.disabled.discard(FALLBACK)  # the fallback of every failure cannot be turned off
        self.entries: dict[str, Entry] = {}
        eps = metadata.entry_points(group=GROUP)
        # Built-ins first, so a third-party plugin can never take a built-in's name.
        for ep in sorted(eps, key=lambda ep: not (ep.dist and ep.dist.name == BUILTIN_DIST)):
            self._add(ep)

    def _add(self, ep: metadata.EntryPoint) -> None:
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?"
        entry = Entry(ep.name, dist, ep.value, ep)
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
        self._admit(entry)

    def _admit(self, entry: Entry) -> None:
        """Start the backend, unless autoload is off for it or it is disabled."""
        if not (entry.builtin or self.autoload):
            entry.reason = f"third-party autoload off ({DISABLE_AUTOLOAD})"
        elif entry.name in self.disabled:
            entry.reason = DISABLED
        else:
            self._start(entry)

    def set_disabled(self, names: Iterable[str]) -> None:
        """Make ``names`` the disabled backends: those newly disabled are no longer offered, those
        enabled again are started (blocking, within their budget: call it off the event loop)."""
        before, self.disabled = self.disabled, set(names) - {FALLBACK}
        for key, entry in self.entries.items():
            if key != entry.name or (entry.name in before) == (entry.name in self.disabled):
                continue  # a name clash (never started), or no change
            entry.backend, entry.available, entry.reason, entry.priority = None, False, "", float("-inf")
            self._admit(entry)

    def _start(self, entry: Entry) -> None:
        stage = ["import"]
        ep = entry.ep

        def start():
            entry.factory = ep.load()
            stage[0] = "start"
            backend = entry.factory()
            stage[0] = "viability"
            entry.priority = float(backend.priority)  # raises RuntimeError when not viable
            stage[0] = "probe"
            check_timeline(backend.timeline(PROBE, 0), PROBE)
            return backend

        try:
            backend = start() if entry.builtin else guarded(start, budget=START_BUDGET_S)
        except PluginError as e:
            entry.reason = f"{stage[0]} failed: {e}"
            log.error("backend %s (%s) unavailable: %s", entry.name, entry.dist, entry.reason)
            return
        except Exception as e:
            entry.reason = f"{stage[0]} failed: {_describe(e)}"
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

    def choose(self, setting: str | None = AUTO) -> str:
        """The backend a ``backend`` setting means: the name it gives, or for ``"auto"`` (or
        none) ``$SPARKLS_BACKEND``, else the viable backend of highest priority (``local``, 10,
        unless a plugin claims more)."""
        if setting and setting != AUTO:
            return setting
        env = os.environ.get(SELECT, "").strip()
        if env and env != AUTO:
            return env
        return next(iter(self.names()), FALLBACK)

    def get(self, name: str | None = None, overrides: dict | None = None, strict: bool = False) -> Backend:
        """The backend called ``name`` (``"name:variant"`` picks a part or release), falling back.

        ``"auto"`` or no name: as :meth:`choose` says. An unknown, unavailable, disabled or
        unbuildable backend yields ``local`` (logged), or raises ValueError with the reason
        when ``strict``.
        """
        name = self.choose(name)
        base, _, variant = name.partition(":")
        e = self.entries.get(base)
        try:
            if e is None or not e.available:
                raise ValueError(e.reason if e else "not installed")
            if not variant and not overrides:
                return e.backend
            if _trusted(e.factory):
                return e.factory(variant=variant, overrides=overrides)
            return guarded(e.factory, variant=variant, overrides=overrides)
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
            timeline = b.timeline(request, seed) if _trusted(b) else guarded(b.timeline, request, seed)
            return check_timeline(timeline, request)
        except Exception as e:
            if b.name == FALLBACK:
                raise
            self.mark_unavailable(b.name, f"run failed: {_describe(e)}")
            return check_timeline(self.get(FALLBACK).timeline(request, seed), request)


_default: Host | None = None
_disabled: frozenset[str] = frozenset()
_building = threading.Lock()


def host() -> Host:
    """The process-wide :class:`Host`, built on first use (once, whichever thread asks first;
    the server builds it in a worker thread at start-up)."""
    global _default
    if _default is None:
        with _building:
            if _default is None:
                _default = Host(disabled=_disabled)
    return _default


def set_disabled(names: Iterable[str]) -> None:
    """The ``backends.disabled`` setting, for the process-wide host: applied when it is built,
    or at once if it is (waiting for a build under way; blocking: call it off the event loop)."""
    global _disabled
    _disabled = frozenset(names)
    with _building:
        if _default is not None:
            _default.set_disabled(_disabled)


def reset() -> None:
    """Forget the process-wide host (tests, or after installing a plugin)."""
    global _default
    _default = None
