"""What the CPU can do, read once from the operating system: the basis of every per-CPU kernel choice.

The machines this project runs on differ: a Sapphire Rapids Xeon has AMX tiles and AVX-512 BF16 / VNNI, on which
bfloat16 and int8 matrix products run in hardware; an AMD EPYC of the same cloud may have AVX2 only, where oneDNN
emulates bfloat16 and a bf16 matmul is slower than float32. Callers ask ``cpu()`` for the features and pick a kernel
(or fall back to float32 and say so); every benchmark prints ``cpu().describe()`` beside its table.

Framework-free on purpose: it reads ``/proc/cpuinfo`` (Linux) and nothing else, so the config-level code and the
benchmarks can use it without importing torch. ``WARMSTART_CPU_FLAGS`` (space-separated flags) replaces the flags
read from the system, to try another CPU's choices on this one (``WARMSTART_CPU_FLAGS="avx2 fma"``).
"""
from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

__all__ = ["CPU", "cpu"]

# The flags that steer a kernel choice, in the order a table prints them.
_REPORTED = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
             "amx_int8", "avx_vnni")


@dataclass(frozen=True)
class CPU:
    model: str
    flags: frozenset[str]
    cores: int

    @property
    def bf16_native(self) -> bool:
        """bfloat16 dot products in hardware (AMX tiles or AVX-512 BF16): bf16 matmuls beat float32 here."""
        return bool({"amx_bf16", "avx512_bf16"} & self.flags)

    @property
    def int8_native(self) -> bool:
        """int8 dot products in hardware (AMX int8, AVX-512 VNNI or AVX-VNNI)."""
        return bool({"amx_int8", "avx512_vnni", "avx_vnni"} & self.flags)

    def describe(self) -> str:
        shown = [f for f in _REPORTED if f in self.flags]
        return f"{self.model}, {self.cores} cores ({' '.join(shown) or 'none of ' + ' '.join(_REPORTED[:3])})"


def _read_cpuinfo() -> tuple[str, set[str]]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU", set()
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # x86, ARM
            flags = set(value.split())
    return model or platform.machine() or "unknown CPU", flags


@functools.lru_cache(maxsize=1)
def cpu() -> CPU:
    model, flags = _read_cpuinfo()
    override = os.environ.get("WARMSTART_CPU_FLAGS")
    if override is not None:
        flags = set(override.split())
        model += " (flags from WARMSTART_CPU_FLAGS)"
    return CPU(model=model, flags=frozenset(flags), cores=os.cpu_count() or 1)
