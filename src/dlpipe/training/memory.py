"""Keep freed tensor memory inside the process while training on the CPU (glibc's malloc only).

glibc serves blocks above its mmap threshold (128 KiB at start, adapting up to 32 MiB) with fresh
``mmap`` pages and returns them to the OS on ``free``. A training step frees its activations and
allocates them again in the next step, so each step page-faults every large activation back in: the
seed CNN at batch 64 took ~800 page faults per step on this machine, about 15% of the step (a
2.8 ms zero-fill of a 5.5 MB gradient in ``max_pool2d``'s backward, 0.2 ms when the pages are warm).
Raising the mmap threshold (to glibc's cap, 32 MiB) and the trim threshold keeps those blocks in the
heap for the next step to reuse.

The setting is process-wide and stays for the life of the process (memory freed after training is
reused by later allocations instead of going back to the OS). ``DLPIPE_KEEP_FREED_MEMORY=0`` turns it
off; other allocators (jemalloc, tcmalloc through ``LD_PRELOAD``, macOS, Windows) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_state: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when the setting is in effect."""
    if "done" in _state:
        return _state["done"]
    _state["done"] = False
    if (
        os.environ.get("DLPIPE_KEEP_FREED_MEMORY", "1") == "0"
        or platform.system() != "Linux"
        or platform.libc_ver()[0] != "glibc"
    ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # glibc refuses an mmap threshold above half its heap size (32 MiB on 64-bit builds): blocks larger
    # than that still come from mmap, which costs little next to the work on a tensor that size.
    mmap_ok = (
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1
        or libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    )
    trim_ok = libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1) == 1
    _state["done"] = bool(mmap_ok and trim_ok)
    return _state["done"]
