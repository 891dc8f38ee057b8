"""``build_model(spec)``: a JSON-able spec (family + sizes) to an ``nn.Module``.

The spec is exactly what the bundle stores, so loading a bundle rebuilds the same network
from data alone, never from code in the bundle.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import DlpipeError, InvalidConfigError, suggest
from dlpipe.models.mlp import ACTIVATIONS, MEMBER_AVERAGES, MLP

__all__ = [
    "available_memory",
    "build_model",
    "check_model_memory",
    "register_model",
    "model_families",
]

_BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {}


def register_model(
    family: str,
) -> Callable[[Callable[[dict[str, Any]], nn.Module]], Callable[[dict[str, Any]], nn.Module]]:
    """Decorator: register a builder ``spec -> nn.Module`` under a family name."""

    def deco(fn: Callable[[dict[str, Any]], nn.Module]) -> Callable[[dict[str, Any]], nn.Module]:
        _BUILDERS[family] = fn
        return fn

    return deco


def model_families() -> list[str]:
    return sorted(_BUILDERS)


def build_model(spec: dict[str, Any], *, for_training: bool = True) -> nn.Module:
    """Build the network a spec describes, after checking that it fits in memory.

    Args:
        spec: The JSON spec (``family`` and sizes).
        for_training: Count the memory training needs (weights, gradients and two optimizer
            moments: 4 copies) rather than the weights alone (loading a bundle). Defaults to `True`.

    Raises:
        InvalidConfigError: the family is unknown, a size is invalid, or the model needs more memory
            than the machine has available (said before anything is allocated).

    Example:
        >>> build_model({"family": "mlp", "n_numeric": 4, "n_outputs": 3, "hidden": [8]})(__import__("torch").zeros(2, 4)).shape
        torch.Size([2, 3])
    """
    family = spec.get("family", "mlp")
    if family not in _BUILDERS:
        raise InvalidConfigError(
            f"unknown model family {family!r}{suggest(family, _BUILDERS)}; known families are: {', '.join(model_families())}."
        )
    check_model_memory(spec, for_training=for_training)
    return _BUILDERS[family](spec)


def check_model_memory(spec: dict[str, Any], *, for_training: bool = True) -> None:
    """Refuse, in one sentence, a model whose weights (and training state) exceed the memory available.

    The model is built on torch's "meta" device (shapes only: no memory, no random numbers drawn) to
    count its parameters; a builder that cannot run there is not checked. Activations are not
    counted, so this only catches models that cannot fit at all (``hidden=[100000, 100000]``), not
    tight ones.
    """
    available = available_memory()
    if available is None:
        return
    try:
        with torch.device("meta"):
            meta = _BUILDERS[spec.get("family", "mlp")](spec)
        params = [p for p in meta.parameters()] + [b for b in meta.buffers()]
        weights = sum(p.numel() * p.element_size() for p in params)
    except DlpipeError:
        raise  # a bad spec: the same error the real build would give
    except Exception:  # noqa: BLE001 - a builder that needs real tensors is built (and fails) as before
        return
    copies = 4 if for_training else 1
    needed = weights * copies
    if needed <= available:
        return
    n = sum(p.numel() for p in meta.parameters())
    purpose = (
        "to train (weights, gradients and optimizer state)" if for_training else "for its weights"
    )
    sizes = f" with `hidden` {spec['hidden']!r}" if spec.get("hidden") else ""
    raise InvalidConfigError(
        f"the {spec.get('family', 'mlp')} model{sizes} has {n:,} parameters and needs about {_gb(needed)} of memory {purpose}, "
        f"but only {_gb(available)} is available; use a smaller model (fewer or narrower layers) or a machine with more memory."
    )


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup (container) limit; None if unknown."""
    found: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text(encoding="ascii").strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.0f} MB"


@register_model("mlp")
def _build_mlp(spec: dict[str, Any]) -> nn.Module:
    hidden = spec.get("hidden") or [64, 32]
    problems = []
    if any((not isinstance(h, int)) or h < 1 for h in hidden):
        problems.append(
            f"`hidden` is {hidden!r} but must be a list of positive integers such as [64, 32]"
        )
    activation = spec.get("activation", "relu")
    if activation not in ACTIVATIONS:
        problems.append(
            f"`activation` is {activation!r}{suggest(activation, ACTIVATIONS)} but must be one of {', '.join(ACTIVATIONS)}"
        )
    numeric_input = spec.get("numeric_input", "none")
    if numeric_input not in ("none", "robust_clip"):
        problems.append(f"`numeric_input` is {numeric_input!r} but must be 'none' or 'robust_clip'")
    bins = spec.get("bins", 0)
    counts = bins if isinstance(bins, list) else [bins]
    if any(not isinstance(b, int) or isinstance(b, bool) or b < 0 for b in counts):
        problems.append(
            f"`bins` is {bins!r} but must be a count >= 0 or a list of counts, one per numeric column"
        )
    members = spec.get("members", 1)
    if not isinstance(members, int) or isinstance(members, bool) or not 1 <= members <= 256:
        problems.append(f"`members` is {members!r} but must be an integer from 1 to 256")
    average = spec.get("average", "mean")
    if average not in MEMBER_AVERAGES:
        problems.append(f"`average` is {average!r} but must be one of {', '.join(MEMBER_AVERAGES)}")
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    return MLP(
        n_numeric=int(spec["n_numeric"]),
        n_outputs=int(spec["n_outputs"]),
        hidden=list(hidden),
        activation=activation,
        dropout=float(spec.get("dropout", 0.0)),
        batch_norm=bool(spec.get("batch_norm", False)),
        cardinalities=list(spec.get("cardinalities", [])),
        embedding_dims=spec.get("embedding_dims"),
        numeric_input=numeric_input,
        bins=list(bins) if isinstance(bins, list) else int(bins),
        members=members,
        average=average,
        skip=bool(spec.get("skip", False)),
    )
