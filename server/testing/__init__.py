"""Test tooling for sparkls and its plugins, kept out of the server itself.

- :mod:`.trace`: the trace format (JSON Lines), its reader/writer and redaction.
- :mod:`.record`: `sparkls record`, a stdio proxy that writes a trace.
- :mod:`.replay`: `sparkls replay`, a trace's client side against a fresh server (subprocess or in-process).
- :mod:`.pytest_plugin`: the ``sparkls_replay`` fixtures (``pytest11`` entry point).
- :mod:`.clock`: virtual time for in-process replays.
- :mod:`.client`: a pygls client that drives `sparkls serve` over stdio as an editor would.
"""
