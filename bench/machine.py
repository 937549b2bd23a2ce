"""The machine a benchmark ran on, in one line (cores, memory, kernel, Python)."""
from __future__ import annotations

import os
import platform


def describe() -> str:
    with open("/proc/meminfo") as f:
        total_kb = int(f.readline().split()[1])
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} cores ({model}), {total_kb / 2**20:.0f} GiB, kernel {platform.release()}, "
            f"Python {platform.python_version()}")
