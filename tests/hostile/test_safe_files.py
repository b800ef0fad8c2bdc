"""safe_files: the one reader of workspace-named files."""

from __future__ import annotations

import os
from pathlib import Path

from sparkls.server.safe_files import Skip, inside, read_text


def test_reads_only_small_regular_text_files_inside_the_roots(tmp_path: Path) -> None:
    """Ensure FIFOs, devices, symlinks out, big, binary and non-UTF-8 files are skipped with a reason."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "secret.py").write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.py").write_text("x = 1\n")
    (root / "inner.py").symlink_to(root / "ok.py")
    (root / "escape.py").symlink_to(out / "secret.py")
    os.mkfifo(root / "fifo.py")
    (root / "big.py").write_text("x" * 101)
    (root / "bin.py").write_bytes(b"a\0b")
    (root / "latin.py").write_bytes("café".encode("latin-1"))
    assert read_text(root / "ok.py", 100, [root]) == "x = 1\n"
    assert read_text(root / "inner.py", 100, [root]) == "x = 1\n"  # a symlink inside is fine
    reasons = {name: read_text(root / name, 100, [root]) for name in
               ("escape.py", "fifo.py", "big.py", "bin.py", "latin.py", "missing.py")}
    assert all(isinstance(r, Skip) for r in reasons.values())
    assert "outside" in reasons["escape.py"].reason
    assert "not a regular file" in reasons["fifo.py"].reason
    assert "too large" in reasons["big.py"].reason
    assert reasons["bin.py"].reason == "binary" and reasons["latin.py"].reason == "not UTF-8"
    assert "not a regular file" in read_text("/dev/zero", 100, ["/dev"]).reason
    # st_size 0 but content (procfs): the read itself is bounded.
    assert "too large" in read_text("/proc/self/maps", 10, ["/proc"]).reason
    assert inside(root / "ok.py", [out]) is None and inside(tmp_path / "rootx", [root]) is None
