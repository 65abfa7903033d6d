"""What machine a result came from: CPU model and vector extensions, accelerators, versions.

Every figure transferkit records (run records, experiment metrics, benchmark
tables, ``transferkit info``) names the machine with these: training speed on
CPU depends on the vector extensions (AVX-512 ran 2-4x AVX2 here), so a time
without them means little.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from transferkit._backend import name, quiet_tensorflow_import


def accelerators() -> list[str]:
    """Names of the GPUs (or TPUs) the active backend sees; empty on a CPU-only machine."""
    backend = name()
    if backend == "tensorflow":
        quiet_tensorflow_import()
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [torch.cuda.get_device_name(i) for i in range(count)]
    return []


def describe_devices() -> str:
    """One line: CPU cores and accelerators, e.g. ``"x86_64 2 CPU cores, no GPU"``."""
    gpus = accelerators()
    return f"{platform.machine()} {os.cpu_count()} CPU cores, " + (
        f"{len(gpus)} GPU" if gpus else "no GPU"
    )


def versions() -> dict[str, str]:
    """Versions of the libraries a result depends on, the backend's own included."""
    import keras
    import numpy as np

    from transferkit import __version__

    backend = name()
    found = {
        "transferkit": __version__,
        "keras": keras.__version__,
        "backend": backend,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    if backend in ("tensorflow", "jax", "torch"):  # each backend's package has its name
        found[backend] = installed_version(backend)
    return found


def installed_version(package: str) -> str:
    """A package's installed version without importing it, or ``"not installed"``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


VECTOR_FLAGS = ("avx", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
"""The vector extensions that decide CPU training speed (AVX-512 ran 2-4x AVX2 here)."""


def cpu_description() -> str:
    """The CPU model, logical CPU count and vector extensions: what a timing depends on.

    Read from ``/proc/cpuinfo`` (as ``lscpu`` does); elsewhere the platform's
    processor name and no extension list.

    Example:
        >>> "CPUs" in cpu_description()
        True
    """
    import platform
    import re

    model, flags = platform.processor() or platform.machine(), set()
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.+)$", info, re.M).group(1).strip()
        flags = set(re.search(r"^flags\s*:\s*(.+)$", info, re.M).group(1).split())
    except (OSError, AttributeError):
        pass  # not Linux, or an odd cpuinfo (ARM): the fallback name, no extensions listed
    vector = " ".join(f for f in VECTOR_FLAGS if f in flags) or "no AVX"
    return f"{model}, {os.cpu_count()} CPUs, {vector}"
