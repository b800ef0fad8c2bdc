"""The GGUF header: metadata and the tensor index, read straight from the file.

GGUF (versions 2 and 3, little-endian) is a magic, a version, counts, then key/value
metadata and one entry per tensor (name, shape, ggml type, offset). :func:`read_header`
parses that with bounds-checked reads of one memory map, and raises :class:`ModelLoadError`
naming the file on anything inconsistent. ``gguf.GGUFReader`` made ~165 MB of per-field
objects for a 49k-token vocabulary, took 2 s and left ~5 MB of fragments resident.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np


class ModelLoadError(Exception):
    """The model file is missing, unreadable, not llama, or has inconsistent shapes."""


# GGUF value types (gguf.GGUFValueType) with fixed-size encodings, as NumPy little-endian dtypes.
_FIXED = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1", 10: "<u8", 11: "<i8", 12: "<f8"}
_BOOL, _STRING, _ARRAY = 7, 8, 9


class _HeaderReader:
    """Sequential little-endian reads of a GGUF header; every read is bounds-checked."""

    def __init__(self, buf) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError(f"truncated at byte {self.pos} (wanted {n} more)")
        view = self.buf[self.pos : self.pos + n]
        self.pos += n
        return view

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def string(self) -> str:
        return str(self.take(self.u64()), "utf-8")

    def value(self, vtype: int):
        """One metadata value: a Python scalar or str; arrays of strings (or arrays) as lists,
        arrays of numbers as NumPy arrays."""
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item, count = self.u32(), self.u64()
            if item in _FIXED:
                dtype = np.dtype(_FIXED[item])
                data = np.frombuffer(self.take(count * dtype.itemsize), dtype)
                return data.astype(bool) if item == _BOOL else data.copy()
            if count * 8 > len(self.buf) - self.pos:  # every string or array item takes at least 8 bytes
                raise ValueError(f"array of {count} items at byte {self.pos} is longer than the file")
            return [self.value(item) for _ in range(count)]
        if vtype in _FIXED:
            x = np.frombuffer(self.take(np.dtype(_FIXED[vtype]).itemsize), _FIXED[vtype])[0]
            return bool(x) if vtype == _BOOL else x.item()
        raise ValueError(f"unknown value type {vtype} at byte {self.pos}")


def read_header(path: str | Path) -> tuple[dict, dict]:
    """Metadata and tensor index of a GGUF (versions 2 and 3, little-endian).

    Returns ``(metadata, index)``: metadata maps each key to its value (tokenizer vocabulary
    and merges as lists of str, numeric arrays as NumPy arrays); index maps each tensor name
    to ``(ggml type, ggml shape, absolute data offset, n_bytes)``.

    Raises
    ------
    ModelLoadError
        if the file is not a GGUF or its header is inconsistent.
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    path = Path(path)
    try:
        with open(path, "rb") as f:
            # Not closed explicitly: the map is unmapped when the last view of it is collected.
            view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        return _parse_header(_HeaderReader(view), path, GGML_QUANT_SIZES, GGMLQuantizationType)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ModelLoadError(f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc})") from exc


def _parse_header(r: _HeaderReader, path: Path, quant_sizes: dict, qtype) -> tuple[dict, dict]:
    if bytes(r.take(4)) != b"GGUF":
        raise ModelLoadError(f"{path}: not a GGUF file (bad magic)")
    version = r.u32()
    if version not in (2, 3):
        raise ModelLoadError(f"{path}: GGUF version {version} is not supported (2 or 3, little-endian)")
    n_tensors, n_kv = r.u64(), r.u64()
    metadata = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.u32())
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.u32()
        if n_dims > 4:
            raise ValueError(f"tensor {name!r} has {n_dims} dimensions")
        shape = tuple(r.u64() for _ in range(n_dims))
        infos.append((name, r.u32(), shape, r.u64()))
    align = metadata.get("general.alignment", 32)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise ModelLoadError(f"{path}: general.alignment {align!r} is not a power of two")
    start = -(-r.pos // align) * align
    index = {}
    for name, ttype, shape, offset in infos:
        block, size = quant_sizes[qtype(ttype)]
        n_elements = int(np.prod(shape, dtype=np.int64)) if shape else 1
        index[name] = (ttype, shape, start + offset, n_elements // block * size)
    return metadata, index
