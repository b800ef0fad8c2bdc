"""``nvidia-blackwell``: B200 / GB200 / GB300 serving (variants ``b200``, ``gb200``, ``gb300``).

The GPU model is :mod:`sparkls.backends.gpu`; the part and the fitted serving-stack
efficiencies are in ``nvidia-blackwell.toml``. Against Hopper it reads HBM2.3× faster, has
FP4 tensor cores and a shorter per-layer overhead, so a batch-1 stream is faster and, with
continuous batching, one GPU carries many more streams ("up to 10× lower token cost" is the
vendors' claim at scale; ``sparkls simulate`` shows tokens/s per chip). Published figures it
reproduces (``backends/calibration.toml``): DeepSeek-R1 (FP4) >250 tok/s/user on DGX B200 and
gpt-oss-120B at 1,000 tok/s/user at minimum latency (NVIDIA's blogs).
"""

from sparkls.backends.gpu import GpuBackend


class Blackwell(GpuBackend):
    """NVIDIA Blackwell GPUs, tensor-parallel over NVLink 5, continuous batching."""

    name = "nvidia-blackwell"
    priority = 2.0
