"""Backends that pass their probe, then exit, interrupt or block at run time."""

import time

from sparkls.plugins.api import Backend, Timeline


class _Probed(Backend):
    priority = 0.0  # chosen by name only

    def timeline(self, request, seed=0):
        if request.new_tokens > 8:  # the probe asks for 8; a completion for more
            self.misbehave()
        return Timeline(backend=self.name, token_times=tuple(0.1 + i / 100 for i in range(request.new_tokens)))


class Exits(_Probed):
    name = "hostile-exit"

    def misbehave(self):
        raise SystemExit(3)


class Interrupts(_Probed):
    name = "hostile-interrupt"

    def misbehave(self):
        raise KeyboardInterrupt


class Blocks(_Probed):
    name = "hostile-block"

    def misbehave(self):
        time.sleep(3600)


class BlocksAtStart(_Probed):
    name = "hostile-block-start"

    def __init__(self, **kw):
        time.sleep(3600)
