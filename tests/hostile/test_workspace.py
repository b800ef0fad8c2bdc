"""A hostile repository: devices, FIFOs, symlinks out, huge and binary files are skipped and logged."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hostile_client import RawClient, spawn, vm_rss_mb

pytestmark = pytest.mark.e2e
SECRET = "hunter2_outside_the_workspace"
CODE = "def handle_read(request, store):\n    payload = request.json()\n    return payload\n"


@pytest.fixture
def hostile_repo(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text(f'API_TOKEN = "{SECRET}"\nAPI_TOKEN = "{SECRET}"\n')
    (outside / "lib.py").write_text(f'API_TOKEN = "{SECRET}"\n')
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "handlers.py").write_text(CODE * 3)
    (repo / "zero.py").symlink_to("/dev/zero")
    (repo / "urandom.py").symlink_to("/dev/urandom")
    os.mkfifo(repo / "fifo.py")
    (repo / "secret.py").symlink_to(outside / "secret.py")
    (repo / "vendor").symlink_to(outside, target_is_directory=True)
    (repo / "binary.py").write_bytes(b"x = 1\n\0\0\0" * 100)
    with open(repo / "huge.py", "wb") as f:  # sparse: 8 GB by st_size
        f.truncate(8 << 30)
    return repo


def did(c: RawClient, method: str, uri: str, text: str = "") -> None:
    doc = {"uri": uri} if method == "didClose" else {"uri": uri, "languageId": "python", "version": 1, "text": text}
    c.notify(f"textDocument/{method}", {"textDocument": doc})


def test_hostile_repository_is_indexed_safely(hostile_repo: Path) -> None:
    """Ensure devices, FIFOs, symlinks out, huge and binary files are skipped and nothing leaks or hangs."""
    c = RawClient(spawn())
    try:
        c.initialize(hostile_repo, caps={"textDocument": {"inlineCompletion": {}}, "window": {"workDoneProgress": False}})
        line = c.wait_log("indexed ", timeout=30)
        assert "indexed 1 files" in line, line
        c.wait_log("fifo.py: not a regular file")
        for name in ("zero.py", "urandom.py", "secret.py"):  # symlinks leading out
            c.wait_log(f"{name}: outside the workspace")
        assert vm_rss_mb(c.proc.pid) < 1024
        uri = (hostile_repo / "new.py").as_uri()
        did(c, "didOpen", uri, 'API_TOKEN = "')
        items = c.inline(uri, 0, 13)["result"]["items"]
        assert all(SECRET not in i["insertText"] for i in items)
        # didClose of files never opened reads nothing; of opened ones, reads only safe files.
        for name in ("fifo.py", "zero.py", "secret.py", "huge.py"):
            target = (hostile_repo / name).as_uri()
            did(c, "didClose", target)
            did(c, "didOpen", target, "x = 1\n")
            did(c, "didClose", target)
        c.wait_log("didClose: skipped")
        assert c.alive(5)
        items = c.inline(uri, 0, 13)["result"]["items"]
        assert all(SECRET not in i["insertText"] for i in items)
        assert vm_rss_mb(c.proc.pid) < 1024
    finally:
        started = time.monotonic()
        assert c.close() == 0
        assert time.monotonic() - started < 10


def test_many_closes_of_unopened_documents_read_nothing(hostile_repo: Path) -> None:
    """Ensure thousands of didClose for never-opened URIs are logged and cost no reads."""
    c = RawClient(spawn())
    try:
        c.initialize(hostile_repo)
        for i in range(3000):
            did(c, "didClose", (hostile_repo / f"f{i % 7}.py").as_uri() if i % 2 else (hostile_repo / "zero.py").as_uri())
        assert c.alive(10)
        c.wait_log("didClose for a document that is not open")
        assert vm_rss_mb(c.proc.pid) < 1024
    finally:
        assert c.close() == 0


def test_served_model_path_is_read_safely(hostile_repo: Path) -> None:
    """Ensure a served model path naming a device, a FIFO or a file outside the workspace is refused, off the loop."""
    c = RawClient(spawn())
    try:
        c.initialize(hostile_repo, options={"backend": "cerebras-wse3"})
        uri = (hostile_repo / "new.py").as_uri()
        did(c, "didOpen", uri, CODE)
        for target, why in (("/dev/zero", "outside the workspace"), (str(hostile_repo / "fifo.py"), "not a regular file"),
                            (str(hostile_repo / "secret.py"), "outside the workspace")):
            settings = {"sparkls": {"served_model": target}}
            c.notify("workspace/didChangeConfiguration", {"settings": settings})
            assert why in c.wait_log(f"served model not loaded: served model file {target}")
            assert "result" in c.inline(uri, 2, 10, timeout=20)
        assert vm_rss_mb(c.proc.pid) < 1024
    finally:
        assert c.close() == 0
