"""Sizes of a host's own RAM and CPUs (providers whose hosts are machines: vm)."""
from __future__ import annotations

MEMORY_MB = (64, 65536)  # what a guest may be given, MiB
MAX_VCPUS = 8


def parse_memory(text: object, where: str) -> int:
    """``"512M"``, ``"1G"`` or a whole number of MiB -> MiB; ValueError naming ``where`` otherwise."""
    value: int | None = None
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and text.strip():
        t = text.strip().upper().removesuffix("B").removesuffix("I")
        scale = {"M": 1, "G": 1024}.get(t[-1:], 0)
        digits = t[:-1] if scale else t
        if digits.isdigit() and len(digits) < 7:
            value = int(digits) * (scale or 1)
    if value is None or not MEMORY_MB[0] <= value <= MEMORY_MB[1]:
        raise ValueError(f"{where} must be like \"512M\" or \"1G\" ({MEMORY_MB[0]} MiB to "
                         f"{MEMORY_MB[1] // 1024} GiB), got {text!r}")
    return value
