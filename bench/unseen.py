"""Python code SmolLM2 cannot have seen: packages first published on PyPI in 2026.

SmolLM2's training data ends around 2024, so quality measured on pygls or lsprotocol (which it has likely read)
flatters any model. These packages' first uploads are all from 2026 (PyPI's JSON API, upload_time of their earliest
file), pinned by version and by the wheel's SHA-256, fetched once with pip into a cache outside the clone
($SPARKLS_BENCH_CACHE, default ~/.cache/sparkls-bench) and never committed:

| package | version | first published | what it is |
| --- | --- | --- | --- |
| cadaques | 0.4.1 | 2026-07-10 | cost-aware query-efficient discovery (agents, Bayesian optimisation) |
| metergraphrelay | 0.7.5 | 2026-08-03 | moves LLM trace data between observability providers |
| rmbr | 0.2.7 | 2026-07-30 | agent memory: chunking, indexing, search over SQLite |
| streamwright | 0.1.8 | 2026-10-08 | declarative data connectors (APIs, files, databases) |
| tau-av | 0.5.0 | 2026-08-08 | distributed multi-projector rendering over UDP/OSC |
| ttyping | 1.2.0 | 2026-02-21 | a terminal typing test (Textual screens, storage) |

`TUNE` packages are for choosing defaults and fitting scores; `TEST` packages are for the figures we report, so a
setting is never judged on the code it was tuned on.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: str  # of the py3-none-any wheel


TUNE = (
    Package("cadaques", "0.4.1", "132eab3ae4e5662d14f4a58fff3baa5a3309292d964387506fe57d56ae6c26c4"),
    Package("metergraphrelay", "0.7.5", "6ac806e4108de832cd2a46d77c6da4e522b40e09ddd8490fc8363e30b227c6a7"),
    Package("rmbr", "0.2.7", "9b72977792996899c2882bd2dae3566605a471d22bf1f746ecbb55672a500c74"),
)
TEST = (
    Package("streamwright", "0.1.8", "0bca880e7d03697de0a990233abe7ff4262069b952cbaaa490b6e5ac1a680239"),
    Package("tau-av", "0.5.0", "5f7ff5d0461984563683591628c9d00e1579e7fce325ba0599498be0cefd754d"),
    Package("ttyping", "1.2.0", "62ffd3822d4101756eea2da46bfc7bbed2cc5b1a55d9d48fdfc94893e2e02c7f"),
)
PACKAGES = TUNE + TEST


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sparkls-bench"
    return Path(os.environ.get("SPARKLS_BENCH_CACHE", default))


def workspace(pkg: Package) -> Path:
    """The package's unpacked sources (its .py files only), downloaded and checked on first use."""
    root = cache_dir() / "unseen" / f"{pkg.name}-{pkg.version}"
    done = root / ".complete"
    if done.exists():
        return root
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    prefix = pkg.name.replace("-", "_") + "-" + pkg.version + "-"
    found = [w for w in wheels.glob("*.whl") if w.name.startswith(prefix)]
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        "-d", str(wheels), f"{pkg.name}=={pkg.version}"], check=True)
        found = [w for w in wheels.glob("*.whl") if w.name.startswith(prefix)]
    wheel = found[0]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != pkg.sha256:
        raise RuntimeError(f"{wheel.name}: sha256 {digest}, expected {pkg.sha256}")
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".py") and ".dist-info/" not in name:
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
    done.write_text(wheel.name + "\n")
    return root


def sources(pkg: Package) -> list[Path]:
    """The package's Python files, sorted, so cases cut from them are the same on every machine."""
    return sorted(workspace(pkg).rglob("*.py"))


if __name__ == "__main__":
    for p in PACKAGES:
        files = sources(p)
        lines = sum(len(f.read_text(encoding="utf-8", errors="replace").splitlines()) for f in files)
        print(f"{p.name:16} {p.version:8} {len(files):4} files {lines:6} lines  {workspace(p)}")
