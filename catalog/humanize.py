"""Numbers as people read them in messages (one place: every size in an error says it the same way)."""

from __future__ import annotations


def human_size(size: int) -> str:
    """2147483648 -> '2.0 GiB'; 512 -> '512 bytes'."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns at GiB
