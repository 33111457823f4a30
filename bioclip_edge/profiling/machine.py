"""What machine a measurement came from: CPU, cores, ISA flags, memory, OS, library versions.

A throughput figure without its machine is noise; this record travels with every benchmark and
report. Read from /proc/cpuinfo and /proc/meminfo on Linux (no py-cpuinfo needed), with
platform/os fallbacks elsewhere; a field that cannot be read is None, never a guess.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# flag in /proc/cpuinfo -> name shown in reports. They decide which kernels run:
# AVX-512/VNNI speed up int8 dot products; AMX tiles do bf16/int8 matmuls in hardware.
ISA_FLAGS = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "avx512_fp16": "AVX-512 FP16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX BF16",
    "amx_int8": "AMX INT8",
    # ARM (Raspberry Pi 5, Jetson, Graviton): features line
    "asimd": "NEON",
    "asimddp": "NEON dot product",
    "i8mm": "int8 matmul (i8mm)",
    "bf16": "BF16",
    "sve": "SVE",
}
LIBRARIES = ("numpy", "onnxruntime", "openvino", "torch", "open_clip_torch", "onnx", "matplotlib")


@dataclass(frozen=True)
class MachineInfo:
    cpu_model: str | None
    architecture: str
    logical_cores: int | None
    physical_cores: int | None
    isa: tuple[str, ...]  # report names from ISA_FLAGS, in that order
    memory_total_gb: float | None
    memory_available_gb: float | None
    os: str
    python: str
    hypervisor: bool = False
    affinity_cores: int | None = None  # cores this process may use (containers often limit it)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["isa"] = list(self.isa)
        return d

    def one_line(self) -> str:
        cores = f"{self.physical_cores or '?'} cores / {self.logical_cores or '?'} threads"
        mem = f"{self.memory_total_gb:.0f} GB" if self.memory_total_gb else "? GB"
        isa = ", ".join(f for f in self.isa if f != "FMA") or "no SIMD flags read"
        vm = " (virtual machine)" if self.hypervisor else ""
        return f"{self.cpu_model or 'unknown CPU'}{vm}, {cores}, {mem} RAM; {isa}"


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, flags, logical and physical core counts from /proc/cpuinfo text (x86 or ARM)."""
    model = board = None
    flags: set[str] = set()
    logical = 0
    cores: set[tuple[str, str]] = set()
    physical_id = core_id = None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if core_id is not None:
                cores.add((physical_id or "0", core_id))
            physical_id = core_id = None
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and not model:
            model = value
        elif key in ("model", "hardware", "cpu model") and not value.isdigit() and not board:
            board = value  # ARM boards: "Model : Raspberry Pi 5 Model B Rev 1.0" (x86 "model" is a number)
        elif key in ("flags", "features"):
            flags.update(value.split())
        elif key == "physical id":
            physical_id = value
        elif key == "core id":
            core_id = value
    return {
        "cpu_model": model or board,
        "flags": flags,
        "logical_cores": logical or None,
        "physical_cores": len(cores) or None,
    }


def parse_meminfo(text: str) -> tuple[float | None, float | None]:
    """(total, available) GB from /proc/meminfo text."""
    values = {}
    for line in text.splitlines():
        m = re.match(r"(\w+):\s+(\d+)\s*kB", line)
        if m:
            values[m.group(1)] = int(m.group(2)) * 1024 / 1e9
    return values.get("MemTotal"), values.get("MemAvailable")


def isa_names(flags: set[str]) -> tuple[str, ...]:
    return tuple(name for flag, name in ISA_FLAGS.items() if flag in flags)


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions from package metadata (nothing is imported, so this is instant)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _cpu_model_fallback() -> str | None:
    if sys.platform == "darwin":
        import subprocess

        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=2).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None
    return platform.processor() or None


def _physical_cores_fallback() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except ImportError:
        return None


def _memory_fallback() -> tuple[float | None, float | None]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return vm.total / 1e9, vm.available / 1e9
    except ImportError:
        return None, None


def machine_info(versions: bool = True) -> MachineInfo:
    """The machine this process runs on."""
    cpu = parse_cpuinfo(_read("/proc/cpuinfo"))
    total, available = parse_meminfo(_read("/proc/meminfo"))
    if total is None:
        total, available = _memory_fallback()
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return MachineInfo(
        cpu_model=cpu["cpu_model"] or _cpu_model_fallback(),
        architecture=platform.machine(),
        logical_cores=cpu["logical_cores"] or os.cpu_count(),
        physical_cores=cpu["physical_cores"] or _physical_cores_fallback(),
        isa=isa_names(cpu["flags"]),
        memory_total_gb=None if total is None else round(total, 1),
        memory_available_gb=None if available is None else round(available, 1),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        hypervisor="hypervisor" in cpu["flags"],
        affinity_cores=affinity,
        versions=library_versions() if versions else {},
    )
