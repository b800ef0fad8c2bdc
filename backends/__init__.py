"""sparkls.backends: the built-in hardware models, registered as ``sparkls.backends`` entry points.

- ``local`` (:mod:`.local`): this machine's decode core, measured, emitted as produced.
- ``cerebras-wse3`` (:mod:`.cerebras`): weights in wafer SRAM, layers pipelined across wafers.
- ``nvidia-blackwell`` / ``nvidia-hopper`` (:mod:`.blackwell`, :mod:`.hopper` over :mod:`.gpu`):
  HBM-bound decode, tensor parallelism over NVLink, continuous batching.
- ``remote`` (:mod:`.remote`): a real engine's tokens (``sparkls.decode.remote.remote_engine``), as they arrive.

They use only the public contract, :mod:`sparkls.plugins.api`, as a third-party backend does:
each is a :class:`~sparkls.plugins.api.TomlBackend` whose spec is ``<name>.toml`` here (a user's
``$XDG_CONFIG_HOME/sparkls/backends/<name>.toml`` overrides any field; served models are the
catalogue in ``plugins/models/``). :mod:`.served` turns a replica's iteration cost into a timeline
and :mod:`.load` simulates its scheduler under load (continuous batching, chunked prefill, KV room, queueing);
the published figures the specs are fitted to are ``calibration.toml``, tagged by source kind
(:mod:`.calibration`, ``sparkls backends calibrate``; :mod:`.fit`, ``sparkls backends fit``).
The models and the report: ``docs/backends.md``.
"""
