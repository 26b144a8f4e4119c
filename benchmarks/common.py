"""What the benchmark scripts share: the two benchmark configurations and the machine record."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a machine record needs it (not by every script)
    import torch

PRESETS = {
    # the original paper's RSC15 bpr-max setting (no embedding)
    "bpr-max": dict(loss="bpr-max", elu_param=0.5, constrained_embedding=False, embedding=0,
                    learning_rate=0.2, momentum=0.3, sample_alpha=0.0, bpreg=1.0),
    # cross-entropy with logQ and the shared embedding
    "cross-entropy": dict(loss="cross-entropy", constrained_embedding=True, embedding=0,
                          learning_rate=0.2, momentum=0.2, sample_alpha=0.5, logq=1.0,
                          dropout_p_hidden=0.4),
}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return cpu


def machine(device: torch.device | str) -> dict[str, object]:
    """What the numbers were measured on: CPU model, threads, torch version, device (GPU)."""
    import torch

    device = torch.device(device)
    info: dict[str, object] = {"cpu": cpu_model(), "cores": os.cpu_count(),
                               "threads": torch.get_num_threads(),
                               "torch": torch.__version__, "device": str(device)}
    if device.type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
