"""Compute devices and CPU threads: the one place the engine decides where torch runs.

Device specifications (CLI ``--device``, ``TrainConfig.device``, ``PredictConfig.device``):

* ``auto``   -- the first CUDA device when torch sees one, else the CPU (the choice is logged);
* ``cpu``;
* ``cuda``   -- the current CUDA device; ``cuda:N`` -- device N *as this process sees it*
  (under Slurm or ``CUDA_VISIBLE_DEVICES`` the visible GPUs are renumbered from 0);
* a list, ``cuda:0,cuda:1`` (or a Python list): several GPUs.  Code that uses one device
  takes the first; :func:`resolve_devices` returns them all.

Threads: :func:`allocated_cpus` is what this process was *given* -- the CPU affinity mask
(``os.sched_getaffinity``), capped by ``SLURM_CPUS_PER_TASK`` and ``OMP_NUM_THREADS`` when
set -- never ``os.cpu_count()``, which counts the whole node (a 1-CPU Slurm job on a
64-core node would otherwise start 64 threads and slow every job beside it).

This module has no numerics; torch is imported lazily so parsing works without it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import List, Sequence, Union

from .errors import SCNetInputError

log = logging.getLogger(__name__)

AUTO = "auto"
CPU = "cpu"
CUDA = "cuda"
DEVICE_HELP = "auto (first GPU if any, else CPU), cpu, cuda, cuda:N, or a list cuda:0,cuda:1"
_ONE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")

DeviceSpec = Union[str, Sequence[str], None]


def parse_devices(spec: DeviceSpec) -> List[str]:
    """Normalised device names of ``spec`` (syntax only, no torch): ``['auto']``, ``['cpu']``,
    ``['cuda:0', 'cuda:1']`` ...  ``None`` or ``''`` mean ``auto``.  Raises SCNetInputError."""
    if spec is None:
        return [AUTO]
    items = [str(s) for s in spec] if isinstance(spec, (list, tuple)) else str(spec).split(",")
    names = [s.strip().lower() for s in items if s.strip()]
    if not names:
        return [AUTO]
    for n in names:
        if not _ONE.match(n):
            raise SCNetInputError(f"device={spec!r} is not understood: use {DEVICE_HELP}.")
    if len(names) > 1 and any(n in (AUTO, CPU, CUDA) for n in names):
        raise SCNetInputError(f"device={spec!r}: a list must name GPUs as cuda:N (e.g. cuda:0,cuda:1).")
    if len(set(names)) != len(names):
        raise SCNetInputError(f"device={spec!r} repeats a GPU.")
    return names


def gpu_devices(gpu_ids: Sequence[Union[int, str]]) -> str:
    """Device string for GPU ids as the process sees them (e.g. Scipion's GPU list inside a
    job: ``[0, 1]`` -> ``'cuda:0,cuda:1'``); no ids -> ``'cpu'``."""
    ids = []
    for g in gpu_ids:
        s = str(g).strip()
        if not s.isdigit():
            raise SCNetInputError(f"GPU id {g!r} is not a non-negative integer.")
        ids.append(int(s))
    return ",".join(f"cuda:{i}" for i in ids) if ids else CPU


def _cuda_count() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_devices(spec: DeviceSpec = AUTO) -> list:
    """torch devices of ``spec``; ``auto`` picks ``cuda:0`` or the CPU and logs it.  A clear
    SCNetInputError when CUDA is asked for but absent, or a GPU index is not visible."""
    import torch
    names = parse_devices(spec)
    if names == [AUTO]:
        n = _cuda_count()
        dev = torch.device("cuda:0") if n else torch.device(CPU)
        log.info("device auto: %s", f"cuda:0 ({torch.cuda.get_device_name(0)}, {n} GPU(s) visible)" if n
                 else "cpu (no CUDA device visible to torch)")
        return [dev]
    if names == [CPU]:
        return [torch.device(CPU)]
    n = _cuda_count()
    if not n:
        raise SCNetInputError(f"device={spec!r} requested but CUDA is not available in this environment "
                              "(no GPU, a CPU-only torch, or no GPU allocated to this job). "
                              "Use --device cpu or --device auto.")
    out = []
    for name in names:
        dev = torch.device(name)
        if dev.index is not None and dev.index >= n:
            raise SCNetInputError(f"device={spec!r}: {name} is not visible here, only {n} GPU(s) "
                                  f"(cuda:0..cuda:{n - 1}; CUDA_VISIBLE_DEVICES="
                                  f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}).")
        out.append(dev)
    return out


def resolve_device(spec: DeviceSpec = AUTO):
    """The (first) torch device of ``spec`` -- see :func:`resolve_devices`."""
    return resolve_devices(spec)[0]


def device_name(spec: DeviceSpec = AUTO) -> str:
    """``spec`` with ``auto`` replaced by the concrete choice (what configs record)."""
    return ",".join(str(d) for d in resolve_devices(spec))


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def native_bf16(device) -> bool:
    """Whether ``device`` computes bf16 in hardware: a CUDA GPU that supports it, or a CPU with AVX-512
    BF16 or AMX (elsewhere oneDNN emulates bf16, slower than fp32)."""
    import torch
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if dev.type != "cpu":
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # another torch: the kernel's CPU flags
        try:
            with open("/proc/cpuinfo") as fh:
                flags = set(fh.read().split())
        except OSError:
            return False
        return bool({"avx512_bf16", "amx_bf16"} & flags)


def resolve_precision(device, precision: str = "auto") -> str:
    """``precision`` with ``auto`` replaced by the concrete choice: bf16 where the device computes it
    natively (:func:`native_bf16`), else fp32.  SCNetInputError for an unknown one or fp16 off CUDA."""
    import torch
    precision = str(precision or "auto").lower()
    if precision not in PRECISIONS:
        raise SCNetInputError(f"precision={precision!r}: use one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise SCNetInputError("precision=fp16 needs a CUDA device; use bf16 or fp32 on the CPU.")
    return precision


def autocast(device, precision: str = "auto"):
    """Context for inference in ``precision`` (:func:`resolve_precision`): fp32 = nothing changes; bf16
    (CUDA or CPU) or fp16 (CUDA only) = torch autocast (convolutions in half precision, accumulation in fp32)."""
    import torch
    precision = resolve_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    dev = torch.device(device)
    return torch.autocast(device_type=dev.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _positive_int(value) -> int:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return 0
    return n if n > 0 else 0


def allocated_cpus() -> int:
    """CPUs this process was given: the affinity mask, capped by SLURM_CPUS_PER_TASK and
    OMP_NUM_THREADS when they hold a positive integer; at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        n = os.cpu_count() or 1
    for var in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        k = _positive_int(os.environ.get(var))
        if k:
            n = min(n, k)
    return max(1, n)


def set_threads(n: int = 0) -> int:
    """torch intra-op threads = ``n`` or :func:`allocated_cpus`; returns the number set."""
    import torch
    n = n if n and n > 0 else allocated_cpus()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
