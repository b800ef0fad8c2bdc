"""Calls from one compiled function to another through its address, so the caller does not compile the callee again.

When a Numba function calls another, the caller's library links in the callee's whole LLVM module and optimizes
and generates machine code for it once more; a kernel three calls deep was compiled four times (``q8.matmul``
inside ``linear`` inside ``linear_batch`` inside ``forward``: most of a cold start, measured). A :class:`Kernel`
is compiled once, on its own, for one declared signature (and cached by Numba as usual); its callers receive its
address at run time and call it with :func:`caller`'s intrinsic, in Numba's own calling convention (exceptions
propagate). Nothing is compiled until a caller asks for the address: a kernel no path uses is never compiled.

The declared signature is the contract: the intrinsic casts the caller's arguments to it (or fails to type),
and :meth:`Kernel.address` compiles the callee for exactly it, so a cached caller and a callee compiled later
always agree.
"""

from __future__ import annotations

import threading

from numba import types
from numba.core import cgutils, errors
from numba.core.extending import intrinsic


class Kernel:
    """A compiled function (a Numba dispatcher) called by address with one declared argument list, returning nothing."""

    def __init__(self, dispatcher, argtypes: tuple) -> None:
        self.dispatcher = dispatcher
        self.signature = types.void(*argtypes)
        self._address = 0
        self._lock = threading.Lock()

    @property
    def compiled(self) -> bool:
        """Whether :meth:`address` was asked for (the kernel is compiled or loaded from Numba's cache)."""
        return self._address != 0

    def address(self) -> int:
        """The native entry point, compiling (or loading from the cache) on first use."""
        if not self._address:
            with self._lock:
                if not self._address:
                    self.dispatcher.compile(self.signature)
                    cres = self.dispatcher.overloads[self.signature.args]
                    self._address = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
        return self._address


def caller(argtypes: tuple):
    """An intrinsic ``call(address, *args)`` calling a :class:`Kernel` declared with ``argtypes``."""
    argtypes = tuple(argtypes)

    @intrinsic
    def call(typingctx, address, *args):
        if not isinstance(address, types.Integer):
            raise errors.TypingError("the kernel's address must be an integer")
        if len(args) != len(argtypes):
            raise errors.TypingError(f"{len(args)} arguments for a kernel taking {len(argtypes)}")
        for i, (got, want) in enumerate(zip(args, argtypes)):
            if got != want and typingctx.can_convert(got, want) is None:
                raise errors.TypingError(f"argument {i}: {got} where the kernel takes {want}")

        def codegen(context, builder, signature, llargs):
            fnty = context.call_conv.get_function_type(types.void, argtypes)
            fn = builder.inttoptr(llargs[0], fnty.as_pointer())
            values = cgutils.unpack_tuple(builder, llargs[1], len(argtypes))
            status, _ = context.call_conv.call_function(builder, fn, types.void, argtypes, values)
            with cgutils.if_unlikely(builder, status.is_error):
                context.call_conv.return_status_propagate(builder, status)
            return context.get_dummy_value()

        return types.void(types.int64, types.StarArgTuple.from_types(argtypes)), codegen

    return call
