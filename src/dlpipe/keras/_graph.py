"""The network a Keras model describes: layers wired as a graph (several inputs and outputs allowed).

A plan is the layers in an order where every layer comes after its inputs: ``(layer name, [names of
its inputs])``, with the model's inputs named by their ``Input(name=...)``. ``KerasNet`` runs it; with
several outputs its forward returns them flattened side by side in one (N, sum of widths) tensor, so
the engine (which moves one output tensor) needs nothing new, and the caller splits them again.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.keras._layer import KerasTensor, Layer
from dlpipe.keras.regularizers import Regularizer

__all__ = ["KerasNet", "Plan", "plan_from_tensors"]

Plan = list[tuple[str, list[str]]]


class KerasNet(nn.Module):
    """The built layers run in plan order; each output's last activation is kept apart so a loss can fold it."""

    def __init__(
        self,
        modules: list[nn.Module],
        plan: Plan,
        input_names: list[str],
        output_names: list[str],
        heads: list[nn.Module | None],
        activity: dict[int, Regularizer] | None = None,
        input_shapes: list[tuple[int, ...]] | None = None,
    ) -> None:
        super().__init__()
        self.input_shapes = input_shapes or []
        self.layers = nn.ModuleList(modules)
        self.heads = nn.ModuleList([h if h is not None else nn.Identity() for h in heads])
        self.plan = plan
        self.input_names = input_names
        self.output_names = output_names
        self.fold = [False] * len(output_names)
        self.activity = activity or {}
        self.record_activity = False  # on while fit/evaluate run: the loss reads the terms
        self.activity_terms: list[torch.Tensor] = []

    def example_inputs(self) -> list[torch.Tensor]:
        """A 2-row batch of zeros per input (``dlpipe summary`` and ``dl.plot_model`` draw shapes with it)."""
        return [torch.zeros(2, *shape) for shape in self.input_shapes]

    @property
    def head(self) -> nn.Module:
        return self.heads[0]

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = dict(zip(self.input_names, xs))
        for i, (key, sources) in enumerate(self.plan):
            values[key] = self.layers[i](*[values[s] for s in sources])
            if self.record_activity and i in self.activity:
                out = values[key]
                if key in self.output_names:  # a folded activation still belongs to the layer
                    out = self.heads[self.output_names.index(key)](out)
                # per sample (tf.keras' convention), so the penalty does not grow with the batch
                self.activity_terms.append(self.activity[i](out) / out.shape[0])
        outs = [
            values[k] if self.fold[j] else self.heads[j](values[k])
            for j, k in enumerate(self.output_names)
        ]
        if len(outs) == 1:
            return outs[0]
        return torch.cat([o.reshape(o.shape[0], -1) for o in outs], dim=1)  # (N, sum of widths)

    def take_activity(self) -> torch.Tensor | None:
        """The mean of the activity penalties recorded since the last call (one per forward chunk)."""
        if not self.activity_terms:
            return None
        terms, self.activity_terms = self.activity_terms, []
        per_forward = len(self.activity)
        return torch.stack(terms).sum() / max(1, len(terms) // max(1, per_forward))


def plan_from_tensors(
    inputs: list[KerasTensor], outputs: list[KerasTensor]
) -> tuple[list[Layer], Plan]:
    """The layers between ``inputs`` and ``outputs`` in an order that runs, and their wiring."""
    order: list[KerasTensor] = []
    seen: set[int] = set()
    input_ids = {id(t) for t in inputs}
    stack: list[tuple[KerasTensor, bool]] = [(t, False) for t in reversed(outputs)]
    while stack:  # depth-first, without recursion (deep chains)
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t.layer is None:
            if id(t) not in input_ids:
                raise InvalidConfigError(
                    f"the outputs depend on the input {t.name!r}, which is not in `inputs`; pass every Input the outputs are computed from, e.g. Model([a, b], out)."
                )
            continue
        stack.append((t, True))
        stack.extend((p, False) for p in reversed(t.parents))
    layers = [t.layer for t in order]
    ids = [id(layer) for layer in layers]
    if len(set(ids)) != len(ids):
        raise InvalidConfigError(
            "a layer is called more than once (shared weights); dlpipe.keras runs each layer once, so create one layer per call."
        )
    names = [str(t.name) for t in inputs] + [layer.name for layer in layers]  # type: ignore[union-attr]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidConfigError(
            f"the names {dup} are used by more than one layer or input; give each layer and Input a unique `name`."
        )
    unused = [t.name for t in inputs if not any(t in o.parents for o in order)]
    if unused:
        raise InvalidConfigError(
            f"the inputs {unused} are not used by any output; drop them from `inputs` or connect them to the outputs."
        )
    plan: Plan = [(t.name, [p.name for p in t.parents]) for t in order]  # type: ignore[misc]
    return layers, plan  # type: ignore[return-value]


def consumers(plan: Plan) -> dict[str, int]:
    """How many layers read each tensor (an output that feeds another layer cannot fold its activation)."""
    count: dict[str, int] = {}
    for _, sources in plan:
        for s in sources:
            count[s] = count.get(s, 0) + 1
    return count


def describe_sources(plan: Plan) -> dict[str, Any]:
    return {key: sources for key, sources in plan}
