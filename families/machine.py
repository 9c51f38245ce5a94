"""What machine a results file was measured on: its figures mean little without it."""
from __future__ import annotations

import os
import pathlib
import platform

import torch


def machine_description(device: torch.device | str = "cpu") -> str:
    """The GPU's name, or the CPU's model, cores and torch threads; and torch's version."""
    device = torch.device(device)
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        cpuinfo = pathlib.Path("/proc/cpuinfo")
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")] if cpuinfo.exists() else []
        where = (f"{names[0] if names else platform.processor() or 'CPU'}, {os.cpu_count()} cores, "
                 f"{torch.get_num_threads()} torch threads")
    return f"{where}; torch {torch.__version__}"
