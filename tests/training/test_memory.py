"""The engine keeps freed tensor memory in the heap (training/memory.py): no page faults per step."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)

_FAULTS = textwrap.dedent("""
    import ctypes, os, resource, sys, torch
    from dlpipe.training.memory import keep_freed_memory
    if os.environ["DLPIPE_KEEP_FREED_MEMORY"] == "0":
        # glibc's starting state, pinned: its adaptive thresholds make the default case vary from run to run
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)
    print(keep_freed_memory())
    def step():  # a training step's pattern: several activations of a few MB, all freed at the end
        xs = [torch.zeros(3_000_000) for _ in range(6)]  # 12 MB each, 72 MB in all: above any trim threshold glibc adapts to (64 MiB)
        del xs
    for _ in range(3):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
""")


def _run(env: dict[str, str]) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout.split()
    return out[0], float(out[1])


@glibc_only
def test_freed_tensor_memory_is_reused_without_page_faults() -> None:
    on, faults_on = _run({"DLPIPE_KEEP_FREED_MEMORY": "1"})
    off, faults_off = _run({"DLPIPE_KEEP_FREED_MEMORY": "0"})
    assert (on, off) == ("True", "False")
    # with glibc's starting thresholds every block is fresh mmap'd pages, faulted in again each step
    assert faults_off > 1000, faults_off
    assert faults_on < 50, faults_on


@glibc_only
def test_trainer_turns_it_on_for_cpu_training() -> None:
    code = textwrap.dedent("""
        import torch
        from dlpipe.training import TensorData, Trainer
        from dlpipe.training import memory
        x, y = torch.randn(64, 4), torch.randn(64, 1)
        Trainer(epochs=1, batch_size=16, device="cpu").fit(torch.nn.Linear(4, 1), torch.nn.functional.mse_loss, TensorData((x,), y))
        print(memory._state)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "'done': True" in out
