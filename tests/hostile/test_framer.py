"""The framer alone: any split of the byte stream gives the same messages; one bad frame costs only itself."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from sparkls.server.framing import BadFrame, Frame, Framer, encode

_msgs = st.lists(st.builds(lambda i, t: {"jsonrpc": "2.0", "id": i, "method": "m", "params": {"text": t}},
                           st.integers(0, 10**6), st.text(max_size=40)), min_size=1, max_size=6)


def feed(data: bytes, cuts: list[int]) -> list:
    f, out, pos = Framer(), [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        out += list(f.feed(data[pos:cut]))
        pos = max(pos, cut)
    return out


@settings(max_examples=150, deadline=None)
@given(_msgs, st.lists(st.integers(0, 10**6), max_size=10))
def test_any_split_gives_the_same_messages(msgs, cuts) -> None:
    """Ensure messages come out whole and in order however the bytes are split across reads."""
    data = b"".join(encode(m) for m in msgs)
    assert [e.message for e in feed(data, cuts)] == msgs


@settings(max_examples=150, deadline=None)
@given(_msgs, _msgs, st.integers(-30, 30).filter(bool), st.lists(st.integers(0, 10**6), max_size=6))
def test_a_wrong_length_costs_only_its_frame(before, after, delta, cuts) -> None:
    """Ensure a frame with a wrong Content-Length leaves every later message intact."""
    bad = json.dumps({"jsonrpc": "2.0", "id": "bad", "method": "m"}).encode()
    data = b"".join(map(encode, before)) + b"Content-Length: %d\r\n\r\n" % max(0, len(bad) + delta) + bad
    data += b"".join(map(encode, after))
    events = feed(data, cuts)
    good = [e.message for e in events if isinstance(e, Frame) and e.message.get("id") != "bad"]
    assert good == before + after
    assert all(isinstance(e, (Frame, BadFrame)) for e in events)
