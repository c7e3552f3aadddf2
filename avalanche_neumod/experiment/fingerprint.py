"""The platform fingerprint: what decides a cell's floating-point sums on this machine.

Every cell records it (``host["fingerprint"]``); :mod:`.reproduce` compares a stored one
with this machine's to choose how a rerun is compared.
"""

from __future__ import annotations

import platform
import re
from functools import lru_cache
from typing import Any, Optional

import numpy as np
import torch


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _build_line(config: str, pattern: str) -> Optional[str]:
    m = re.search(pattern, config)
    return m.group(1).strip() if m else None


def platform_fingerprint(device: Any = "cpu") -> dict:
    """What decides a cell's float sums on this machine: CPU model and architecture, the ISA
    level torch dispatches to (``ATEN_CPU_CAPABILITY`` lowers it), BLAS and oneDNN builds,
    torch / numpy / Python versions, torch's thread count; on a GPU its name, CUDA and
    cuDNN versions."""
    config = torch.__config__.show()
    fp = {
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "blas": _build_line(config, r"BLAS_INFO=([^,\n]+)"),
        "mkl": _build_line(config, r"Math Kernel Library Version ([^\n]+?) for"),
        "onednn": _build_line(config, r"MKL-DNN (v[0-9.]+)"),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": "cpu",
    }
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        fp["device"] = torch.cuda.get_device_name(dev)
        fp["cuda"] = torch.version.cuda
        fp["cudnn"] = torch.backends.cudnn.version()
    elif dev.type != "cpu":
        fp["device"] = str(dev)
    return fp
