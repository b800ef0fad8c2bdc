"""sparkls.backends: the built-in hardware models, registered as ``sparkls.backends`` entry points.

- ``local`` (:mod:`.local`): this machine's decode core, measured, emitted as produced.
- ``cerebras-wse3`` (:mod:`.cerebras`): weights in wafer SRAM, layers pipelined across wafers.
- ``nvidia-blackwell`` / ``nvidia-hopper`` (:mod:`.blackwell`, :mod:`.hopper` over :mod:`.gpu`):
  HBM-bound decode, tensor parallelism over NVLink, continuous batching.

Each hardware spec is ``<name>.toml`` here (a user's ``~/.config/sparkls/backends/<name>.toml``
overrides any field); served models are ``model-<name>.toml``. :mod:`.load` simulates a
replica's scheduler under load (continuous batching, chunked prefill, KV room, queueing);
the published figures the specs are fitted to are ``calibration.toml``, tagged by source kind
(:mod:`.calibration`, ``sparkls backends calibrate``; :mod:`.fit`, ``sparkls backends fit``).
The models and the report: ``docs/backends.md``.
"""
