"""Choosing the torch device a computation runs on."""

from __future__ import annotations

import torch

from cryoscape.errors import InputError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' → the first CUDA device when torch sees one, else the CPU; otherwise torch's name."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name} requested but torch sees no CUDA device")
    return device


def bfloat16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 matrix products run natively: CUDA GPUs that support it, or CPUs with
    AVX512-BF16 or AMX (elsewhere torch emulates bfloat16, slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
