"""Line breaks: engines and the n-gram model see LF text only, so a CRLF document completes as its LF twin; a
suggestion is written back with the document's own line break."""

from __future__ import annotations

from sparkls.server.documents import Document


def line_break(doc: Document) -> str:
    """The document's line break (its first one), for writing a suggestion's lines."""
    first = doc.text.find("\n", 0, 100_000)
    if first > 0 and doc.text[first - 1] == "\r":
        return "\r\n"
    return "\r" if first < 0 and "\r" in doc.text[:100_000] else "\n"


def lf(text: str) -> str:
    """``text`` with every line break (``\\r\\n``, ``\\r``) an LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def lf_edit(old: str, start: int, end: int, inserted: str) -> tuple[int, int, str]:
    """The edit ``old[start:end] = inserted`` as the same edit of ``lf(old)``.

    The edit is widened by a CR before it and an LF after it, so it never splits a CRLF
    pair and an inserted CR or LF pairs in the LF view exactly as in the document.
    """
    if start > 0 and old[start - 1] == "\r":
        start, inserted = start - 1, "\r" + inserted
    if end < len(old) and old[end] == "\n":
        end, inserted = end + 1, inserted + "\n"
    return start - old.count("\r\n", 0, start), end - old.count("\r\n", 0, end), lf(inserted)
