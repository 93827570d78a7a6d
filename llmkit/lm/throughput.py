"""Truthful training speed: steady-state tokens/s (after warm-up and compilation) and MFU.

MFU (model FLOPs utilisation, PaLM appendix B) = achieved model FLOP/s / the device's dense peak
for the precision in use. Peaks come from the vendors' data sheets (dense, no sparsity); a device
not in the table, and every CPU, gets a matmul peak measured instead. A shared CPU's measured
peak is only an estimate (other work steals cycles while it is measured), so a rate that would
exceed it reports no MFU at all rather than a figure above 100%.
"""

from __future__ import annotations

import time

import torch

# Dense tensor-core peak in TFLOP/s per GPU: (bf16/fp16, tf32, fp32). Matched against
# torch.cuda.get_device_name() in order, so the more specific names come first.
GPU_PEAK_TFLOPS: list[tuple[str, tuple[float, float, float]]] = [
    ("H100 PCIe", (756.0, 378.0, 51.0)),
    ("H100 NVL", (835.0, 418.0, 60.0)),
    ("H100", (989.0, 494.7, 67.0)),  # SXM
    ("H200", (989.0, 494.7, 67.0)),
    ("GH200", (989.0, 494.7, 67.0)),
    ("A100", (312.0, 156.0, 19.5)),
    ("A10G", (70.0, 35.0, 31.2)),
    ("A10", (125.0, 62.5, 31.2)),
    ("L40S", (362.0, 183.0, 91.6)),
    ("L4", (121.0, 60.0, 30.3)),
    ("RTX 4090", (165.2, 82.6, 82.6)),
    ("RTX 3090", (71.0, 35.6, 35.6)),
    ("V100", (125.0, 15.7, 15.7)),  # no bf16: the first figure is fp16
    ("T4", (65.0, 8.1, 8.1)),
]


def precision_of(args) -> str:
    """The matmul precision a run uses: bf16/fp16, tf32 (fp32 storage, TF32 tensor cores) or fp32."""
    if getattr(args, "bf16", False) or getattr(args, "fp16", False):
        return "bf16"
    if torch.cuda.is_available() and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "fp32"


def table_peak(device_name: str, precision: str) -> float | None:
    """Dense peak FLOP/s of a known GPU for `precision`, or None."""
    column = {"bf16": 0, "tf32": 1, "fp32": 2}[precision]
    for key, peaks in GPU_PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return peaks[column] * 1e12
    return None


# The best matmul rate measured so far in this process, by (device, precision, threads): a peak only
# rises with more samples, so later calls add a short top-up round instead of measuring afresh.
_measured_peaks: dict[tuple[str, str, int], float] = {}


def measured_matmul_peak(device: str = "cpu", precision: str = "fp32") -> float:
    """FLOP/s of a square matmul on `device`: the best timed round measured in this process so far."""
    dtype = {"bf16": torch.bfloat16, "tf32": torch.float32, "fp32": torch.float32}[precision]
    key = (device, precision, torch.get_num_threads())
    # 1024 reaches the BLAS's full speed on a CPU (~20 ms a matmul per core): a quarter second gives
    # a dozen rounds to take the best of; a GPU's rounds are milliseconds, so it keeps its full second
    n, rounds, seconds = (4096, 4, 1.0) if device == "cuda" else (1024, 1, 0.25)
    if key in _measured_peaks:
        seconds /= 4  # a top-up: a busy machine may run faster now
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up: kernel selection, thread pool
    best, deadline = _measured_peaks.get(key, 0.0), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(rounds):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, rounds * 2 * n**3 / (time.perf_counter() - t))
    _measured_peaks[key] = best
    return best


def utilisation(achieved_flops: float, peak_flops: float) -> float | None:
    """achieved / peak, or None when there is no peak or the peak was measured too low to be true (> 100%)."""
    if not peak_flops:
        return None
    mfu = achieved_flops / peak_flops
    return mfu if mfu <= 1.0 else None


def describe_mfu(mfu: float | None, peak_source: str) -> str:
    """MFU as a user should read it: an estimate against a measured peak, withheld when that peak was too low."""
    if mfu is None:
        return "MFU not reported (the peak measured on this busy machine was below the rate achieved)"
    estimate = " (an estimate: the peak was measured on this machine)" if "measured" in peak_source else ""
    return f"MFU {mfu:.1%}{estimate}"


def device_peak(device: torch.device | str, precision: str) -> tuple[float, str]:
    """(peak FLOP/s, where the figure comes from) for one device at `precision`."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = table_peak(name, precision)
        if peak:
            return peak, f"{name} {precision} dense peak (data sheet)"
        return measured_matmul_peak("cuda", precision), f"{name} {precision} measured matmul peak"
    return measured_matmul_peak(
        "cpu", "fp32"
    ), f"CPU ({torch.get_num_threads()} threads) measured fp32 matmul peak"


def warmup_steps_for(total_steps: int) -> int:
    """Optimizer steps left out of the steady-state figure: compilation and allocator warm-up."""
    return min(50, max(2, total_steps // 10))
