"""``nvidia-hopper``: H100 / H200 serving (variants ``h100``, ``h200``, ``gh200-nvl32``).

The GPU model is :mod:`sparkls.backends.gpu`; the part and the fitted serving-stack
efficiencies are in ``nvidia-hopper.toml``, with a ``vllm`` variant for vLLM's defaults.
Published figures it reproduces (``sparkls backends calibrate``): Llama 3.1 8B / 70B at
242 / 128 tok/s/user on the best H100 cloud, 70B at 268 tok/s/user with Medusa on HGX H200,
GH200 NVL32 prefill TTFT 472 ms for 70B and 1.6 s for 405B at 32k input, and vLLM load
curves of gpt-oss-120B, Qwen3-14B and Qwen3-235B-A22B (GPUStack's performance lab).
"""

from sparkls.backends.gpu import GpuBackend


class Hopper(GpuBackend):
    """NVIDIA Hopper GPUs, tensor-parallel over NVLink 4, continuous batching."""

    name = "nvidia-hopper"
    priority = 1.0
