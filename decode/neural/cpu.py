"""What this CPU can run: instruction-set features, and the AMX tile state Linux hands out on request.

``FEATURES`` are LLVM's names for the host's features (what the kernels may be compiled
for); ``cpuinfo_flags()`` the kernel's names from /proc/cpuinfo, which also say whether
the OS enabled a feature (AMX needs the kernel's support, not just the CPU's).

AMX: Linux leaves a process's tile data state (XFEATURE_XTILEDATA, 8 KB of registers per
thread) disabled until the process asks with ``arch_prctl(ARCH_REQ_XCOMP_PERM, 18)``; the
first tile instruction before that is a SIGILL. :func:`request_amx` asks once (via libc's
``syscall``) and checks the grant with ``ARCH_GET_XCOMP_PERM``.
"""

from __future__ import annotations

import ctypes
import platform
from functools import lru_cache

from llvmlite import binding as llvm

SYS_ARCH_PRCTL = 158  # x86-64 syscall number
ARCH_GET_XCOMP_PERM = 0x1022
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18


def _llvm_features() -> set[str]:
    try:
        llvm.initialize_native_target()
        flags = llvm.get_host_cpu_features()
    except Exception:  # an LLVM that cannot tell: assume nothing
        return set()
    return {name for name, on in flags.items() if on}


FEATURES = _llvm_features()


@lru_cache(maxsize=1)
def cpuinfo_flags() -> frozenset[str]:
    """The first CPU's ``flags`` line of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def amx_listed() -> bool:
    """The CPU has AMX int8 tiles and the kernel enabled them (not yet that this process may use them)."""
    return {"amx_tile", "amx_int8"} <= cpuinfo_flags()


@lru_cache(maxsize=1)
def request_amx() -> tuple[bool, str]:
    """Ask Linux for the AMX tile data state for this process: (granted, why not)."""
    if not amx_listed():
        return False, "no amx_tile/amx_int8 in /proc/cpuinfo"
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False, f"not x86-64 Linux ({platform.system()} {platform.machine()})"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        if libc.syscall(ctypes.c_long(SYS_ARCH_PRCTL), ctypes.c_long(ARCH_REQ_XCOMP_PERM), ctypes.c_long(XFEATURE_XTILEDATA)) != 0:
            return False, f"arch_prctl(ARCH_REQ_XCOMP_PERM) refused: errno {ctypes.get_errno()}"
        mask = ctypes.c_ulong(0)
        if libc.syscall(ctypes.c_long(SYS_ARCH_PRCTL), ctypes.c_long(ARCH_GET_XCOMP_PERM), ctypes.byref(mask)) != 0:
            return False, f"arch_prctl(ARCH_GET_XCOMP_PERM) failed: errno {ctypes.get_errno()}"
        if not mask.value >> XFEATURE_XTILEDATA & 1:
            return False, f"tile data not granted (permitted mask {mask.value:#x})"
    except (OSError, AttributeError) as exc:
        return False, f"arch_prctl unavailable: {exc}"
    return True, ""
