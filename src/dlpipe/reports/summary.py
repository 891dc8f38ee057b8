"""``dl.summary`` and ``dl.plot_model``: the layer table (via torchinfo) and a diagram of the network.

The layer table needs one forward pass on an example batch. Where the example comes from, in order:
``example_inputs=`` / ``input_size=`` given by the caller; a model's own ``example_inputs()`` method;
a builder registered for the bundle's model family with :func:`register_example_inputs` (the MLP's is
here). Without any, the table lists layers and parameters with the output shapes left unknown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.reports.plots import Plot, new_figure, render

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "LayerRow",
    "ModelSummary",
    "summary",
    "plot_model",
    "model_diagram",
    "register_example_inputs",
    "first_layer_weight",
]

ExampleInputs = Callable[[dict[str, Any]], "list[torch.Tensor]"]
_EXAMPLES: dict[str, ExampleInputs] = {}
_RESIDUAL_NAME = re.compile(r"residual|resblock|basicblock|bottleneck|skip", re.IGNORECASE)
_SHORTCUT_CHILD = {"shortcut", "downsample", "skip", "residual", "proj"}


def register_example_inputs(family: str, fn: ExampleInputs) -> None:
    """Say how to make a 2-row example batch for a model family, from its JSON spec."""
    _EXAMPLES[family] = fn


def _mlp_inputs(spec: dict[str, Any]) -> list[torch.Tensor]:
    import torch

    inputs = [torch.zeros(2, int(spec["n_numeric"]))]
    if spec.get("cardinalities"):
        inputs.append(torch.zeros(2, len(spec["cardinalities"]), dtype=torch.long))
    return inputs


register_example_inputs("mlp", _mlp_inputs)


def _zeros(*shape: Any) -> list[torch.Tensor]:
    import torch

    return [torch.zeros(2, *[int(v) for v in shape])]


# The generative families' inputs follow from their specs (the GAN's bundle holds the generator: a latent batch).
register_example_inputs("autoencoder", lambda spec: _zeros(spec["n_inputs"]))
register_example_inputs("vae", lambda spec: _zeros(spec["n_inputs"]))
register_example_inputs(
    "conv_autoencoder", lambda spec: _zeros(spec.get("channels", 1), spec["size"], spec["size"])
)
register_example_inputs(
    "recurrent_autoencoder", lambda spec: _zeros(spec["seq_len"], spec["n_features"])
)
register_example_inputs("gan", lambda spec: _zeros(spec.get("latent", 32)))


def _token_ids(spec: dict[str, Any]) -> list[torch.Tensor]:
    """Two documents of 16 token ids (id 1, the unknown word; fewer when the model reads fewer)."""
    import torch

    if isinstance(spec.get("head"), dict) or spec.get("n_numeric") or spec.get("cardinalities"):
        # a text branch beside table columns: its inputs follow the table (no example: the note stays)
        raise ValueError("text beside table columns")
    steps = min(16, int(spec.get("max_length") or 16))
    return [torch.ones(2, steps, dtype=torch.long)]


# The text families read token ids (N, T) from the bundle's tokenizer (docs/text.md).
for _family in (
    "text_bag",
    "text_rnn",
    "text_transformer",
    "text_tfidf",
    "text_static",
    "text_encoder",
):
    register_example_inputs(_family, _token_ids)


@dataclass
class LayerRow:
    """One row of the layer table; ``output_shape`` has the batch axis first (as run on 2 rows)."""

    name: str
    type: str
    depth: int
    output_shape: list[int] | None
    params: int
    trainable: int
    is_leaf: bool
    residual: bool = False


@dataclass
class ModelSummary:
    """What :func:`summary` returns; ``str()`` of it is the layer table."""

    model_name: str
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    input_shapes: list[list[int]] = field(default_factory=list)
    mult_adds: int | None = None
    note: str = ""

    @property
    def leaves(self) -> list[LayerRow]:
        return [r for r in self.layers if r.is_leaf]

    def table(self) -> list[dict[str, Any]]:
        """Rows for display: nested name, type, output shape (``N`` = batch), parameters, trainable."""
        return [
            {
                "layer": "  " * max(r.depth - 1, 0) + (r.name or r.type),
                "type": r.type + (" (residual)" if r.residual else ""),
                # a container that is never called itself (ModuleList) has no output: blank, not unknown
                "output_shape": format_shape(r.output_shape) if r.output_shape or r.is_leaf else "",
                "params": r.params,
                "trainable": r.trainable,
            }
            for r in self.layers
            if r.depth > 0
        ]

    def __str__(self) -> str:
        rows = self.table()
        w = [
            max([len(h)] + [len(str(r[k])) for r in rows])
            for h, k in (("layer", "layer"), ("type", "type"), ("output shape", "output_shape"))
        ]
        head = f"{'layer':<{w[0]}}  {'type':<{w[1]}}  {'output shape':<{w[2]}}  {'params':>10}  trainable"
        lines = [f"{self.model_name}", head, "-" * len(head)]
        for r in rows:
            lines.append(
                f"{r['layer']:<{w[0]}}  {r['type']:<{w[1]}}  {r['output_shape']:<{w[2]}}  {r['params']:>10,}  {r['trainable']:,}"
            )
        lines.append("-" * len(head))
        lines.append(
            f"total parameters {self.total_params:,} (trainable {self.trainable_params:,})"
        )
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    __repr__ = __str__


def format_shape(shape: Sequence[int] | None) -> str:
    if not shape:
        return "?"
    return "(" + ", ".join(["N", *(str(s) for s in shape[1:])]) + ")"


def _resolve(model_or_bundle: Any) -> tuple[nn.Module, dict[str, Any]]:
    from torch import nn

    from dlpipe.bundle.bundle import Bundle, load_bundle

    if isinstance(model_or_bundle, nn.Module):
        return model_or_bundle, {}
    if isinstance(model_or_bundle, Bundle):
        return model_or_bundle.model, model_or_bundle.manifest
    net = getattr(model_or_bundle, "net", None)  # a dlpipe.keras model: its built network
    if isinstance(net, nn.Module):
        return net, {}
    bundle = getattr(model_or_bundle, "bundle", None)  # a Run
    if isinstance(bundle, Bundle):
        return bundle.model, bundle.manifest
    if isinstance(model_or_bundle, (str, Path)):
        path = Path(model_or_bundle)
        b = load_bundle(path / "bundle" if (path / "bundle" / "manifest.json").is_file() else path)
        return b.model, b.manifest
    from dlpipe.core.errors import InvalidInputError

    raise InvalidInputError(
        f"summary() got a {type(model_or_bundle).__name__}, but needs a torch nn.Module, a Bundle, a Run or the path of a bundle or run folder."
    )


def _example_inputs(
    model: nn.Module, spec: dict[str, Any], manifest: dict[str, Any] | None = None
) -> list[torch.Tensor] | None:
    own = getattr(model, "example_inputs", None)
    if callable(own):
        out = own()
        return list(out) if isinstance(out, (list, tuple)) else [out]
    fn = _EXAMPLES.get(str(spec.get("family", "")))
    if fn is not None:
        try:
            return fn(spec)
        except (KeyError, TypeError, ValueError):
            return None
    if (
        isinstance(spec.get("in_channels"), int)
        and isinstance(spec.get("image_size"), list)
        and len(spec["image_size"]) == 2
    ):
        import torch

        return [
            torch.zeros(2, spec["in_channels"], *[int(v) for v in spec["image_size"]])
        ]  # (N, C, H, W)
    if isinstance(
        spec.get("n_features"), int
    ):  # sequence models: (N, T, F), T from the bundle's window
        import torch

        state = (manifest or {}).get("preprocessor") or {}
        steps = state.get("lookback") or state.get("window") or 16
        return [
            torch.zeros(
                2, int(steps) if isinstance(steps, (int, float)) else 16, spec["n_features"]
            )
        ]
    ref = (manifest or {}).get("reference_statistics") or {}
    if (
        (manifest or {}).get("kind") == "image"
        and ref.get("image_size")
        and ref.get("channel_mean")
    ):
        import torch

        return [
            torch.zeros(2, len(ref["channel_mean"]), *[int(v) for v in ref["image_size"]])
        ]  # (N, C, H, W)
    return None


def summary(
    model_or_bundle: Any,
    *,
    example_inputs: Sequence[torch.Tensor] | None = None,
    input_size: Sequence[int] | None = None,
) -> ModelSummary:
    """The layer table of a network: layer, type, output shape, parameters, trainable.

    Args:
        model_or_bundle: An ``nn.Module``, a :class:`dlpipe.Bundle`, a :class:`dlpipe.Run`, or the path
            of a bundle or run folder.
        example_inputs: Tensors for one forward pass (the batch axis first). Defaults to what the
            model or its family provides.
        input_size: Shape of a single float input, e.g. ``(1, 20)``, when no example is known.

    Example:
        >>> import torch
        >>> s = summary(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()), input_size=(2, 4))
        >>> s.total_params, s.leaves[0].output_shape
        (15, [2, 3])
    """
    import torch

    model, manifest = _resolve(model_or_bundle)
    spec = manifest.get("model_spec") or {}
    inputs: list[torch.Tensor] | None
    if example_inputs is not None:
        inputs = list(example_inputs)
    elif input_size is not None:
        inputs = [torch.zeros(*input_size)]
    else:
        inputs = _example_inputs(model, spec, manifest)
    name = type(model).__name__ + (f" ({spec['family']})" if spec.get("family") else "")
    total = int(sum(p.numel() for p in model.parameters()))
    trainable = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    if inputs is not None:
        try:
            return _torchinfo_summary(model, inputs, name, total, trainable)
        except Exception as exc:  # noqa: BLE001 - a model that fails on the example still gets its table
            note = f"output shapes unknown: the example forward pass failed ({type(exc).__name__}: {str(exc)[:120]})."
    else:
        note = "output shapes unknown: no example input is known for this model (pass example_inputs= or input_size=)."
    return ModelSummary(name, _module_rows(model), total, trainable, note=note)


def _torchinfo_summary(
    model: nn.Module, inputs: list[torch.Tensor], name: str, total: int, trainable: int
) -> ModelSummary:
    import torchinfo

    device = next((p.device for p in model.parameters()), None)
    if device is not None:
        inputs = [t.to(device) for t in inputs]
    was_training = model.training
    model.eval()
    try:
        stats = torchinfo.summary(model, input_data=inputs, verbose=0, depth=12, device=device)
    finally:
        model.train(was_training)
    names = {id(m): n for n, m in model.named_modules()}
    rows = []
    for info in stats.summary_list:
        module = info.module
        shape = (
            [int(s) for s in info.output_size]
            if info.output_size and all(isinstance(s, int) for s in info.output_size)
            else None
        )
        rows.append(
            LayerRow(
                name=names.get(id(module), info.var_name),
                type=info.class_name,
                depth=int(info.depth),
                output_shape=shape,
                params=int(info.num_params) if not info.is_recursive else 0,
                trainable=int(info.trainable_params) if not info.is_recursive else 0,
                is_leaf=bool(info.is_leaf_layer),
                residual=_is_residual(module),
            )
        )
    return ModelSummary(
        name, rows, total, trainable, [list(t.shape) for t in inputs], int(stats.total_mult_adds)
    )


def _is_residual(module: nn.Module) -> bool:
    children = dict(module.named_children())
    if not children:
        return False
    return bool(_RESIDUAL_NAME.search(type(module).__name__)) or any(
        k.lower() in _SHORTCUT_CHILD for k in children
    )


def _module_rows(model: nn.Module) -> list[LayerRow]:
    rows = [LayerRow(type(model).__name__, type(model).__name__, 0, None, 0, 0, False)]
    for name, m in model.named_modules():
        if not name:
            continue
        leaf = not any(True for _ in m.children())
        params = sum(p.numel() for p in m.parameters())
        rows.append(
            LayerRow(
                name,
                type(m).__name__,
                name.count(".") + 1,
                None,
                int(params),
                int(sum(p.numel() for p in m.parameters() if p.requires_grad)),
                leaf,
                _is_residual(m),
            )
        )
    return rows


def first_layer_weight(
    model: nn.Module, leaves: Sequence[LayerRow] | None = None
) -> tuple[str, np.ndarray] | None:
    """The first dense or convolutional layer (in execution order when known) and its weights."""
    from torch import nn

    modules = dict(model.named_modules())
    order = [r.name for r in leaves] if leaves else list(modules)
    for name in order:
        m = modules.get(name)
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            return f"{name} ({type(m).__name__})", m.weight.detach().float().cpu().numpy()
        if (
            m is not None
            and not any(True for _ in m.children())
            and any(True for _ in m.parameters(recurse=False))
            and not isinstance(m, (nn.Embedding, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm))
        ):
            return None  # the first weighted layer is recurrent/attention/...: no dense or conv heatmap
    return None


# ---------------------------------------------------------------------------------------- diagram
_COLOURS = (
    (("Linear", "Bilinear", "LazyLinear"), "#cfe2f3"),
    (("Conv",), "#c9daf8"),
    (
        (
            "ReLU",
            "GELU",
            "Tanh",
            "Sigmoid",
            "SiLU",
            "LeakyReLU",
            "ELU",
            "Softmax",
            "Mish",
            "Hardswish",
        ),
        "#d9ead3",
    ),
    (("Norm",), "#fff2cc"),
    (("Dropout",), "#eeeeee"),
    (("Pool", "Flatten", "Unflatten"), "#e6d6f0"),
    (("Embedding",), "#fce5cd"),
    (("LSTM", "GRU", "RNN", "Attention", "Transformer"), "#f4cccc"),
)


def _colour(kind: str) -> str:
    for keys, colour in _COLOURS:
        if any(k in kind for k in keys):
            return colour
    return "#ffffff"


def model_diagram(s: ModelSummary, per_column: int = 22, min_width: float = 0.0) -> Plot:
    """Boxes (layer type + output shape) top to bottom in execution order; an arc with "+" beside
    each residual block; long networks continue in further columns. ``min_width`` (inches) centres
    a narrow diagram on a wider canvas (the report's figures are page-wide)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    title = "Model diagram"
    leaves = s.leaves
    if not leaves:
        return Plot("model_diagram", title, note="the model has no layers to draw.")
    # the residual blocks, as (first leaf index, last leaf index)
    blocks: list[tuple[int, int]] = []
    index = {id(r): i for i, r in enumerate(leaves)}
    for bi, row in enumerate(s.layers):
        if not row.residual:
            continue
        inside = []
        for r in s.layers[bi + 1 :]:
            if r.depth <= row.depth:
                break
            if r.is_leaf:
                inside.append(index[id(r)])
        if inside:
            blocks.append((min(inside), max(inside)))
    boxes: list[tuple[str, str | None, str]] = []
    if s.input_shapes:
        boxes.append(
            ("input " + ", ".join(format_shape(sh) for sh in s.input_shapes), None, "#ffffff")
        )
    offset = len(boxes)
    for leaf in leaves:
        label = leaf.type + (f"  {leaf.params:,} p" if leaf.params else "")
        boxes.append(
            (
                label,
                format_shape(leaf.output_shape) if leaf.output_shape else None,
                _colour(leaf.type),
            )
        )
    n = len(boxes)
    cols = int(np.ceil(n / per_column))
    rows = min(n, per_column)
    step, bh, bw, colw = 1.0, 0.72, 2.6, 3.6
    width = max(3.8, 3.4 * cols)
    fig = new_figure(
        max(width, min_width), 0.42 * rows + 0.9, left=0.1, right=0.1, bottom=0.1, top=0.35
    )
    ax = fig.subplots()
    ax.set_axis_off()
    pos = []
    for i, (label, shape, colour) in enumerate(boxes):
        c, k = divmod(i, per_column)
        x, y = c * colw, -k * step
        pos.append((x, y))
        ax.add_patch(
            FancyBboxPatch(
                (x - bw / 2, y - bh / 2),
                bw,
                bh,
                boxstyle="round,pad=0.02,rounding_size=0.08",
                facecolor=colour,
                edgecolor="#555555",
                linewidth=0.8,
            )
        )
        text = label if shape is None else f"{label}\n{shape}"
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5, linespacing=1.1)
        if i:
            px, py = pos[i - 1]
            if c == divmod(i - 1, per_column)[0]:
                ax.add_patch(
                    FancyArrowPatch(
                        (x, py - bh / 2),
                        (x, y + bh / 2),
                        arrowstyle="-|>",
                        mutation_scale=8,
                        color="#555555",
                    )
                )
            else:  # continue at the top of the next column
                ax.add_patch(
                    FancyArrowPatch(
                        (px + bw / 2, py),
                        (x - bw / 2, y),
                        connectionstyle="arc3,rad=-0.2",
                        arrowstyle="-|>",
                        mutation_scale=8,
                        color="#999999",
                        linestyle="--",
                    )
                )
    for a, b in blocks:
        i, j = a + offset, b + offset
        (x0, y0), (x1, y1) = pos[max(i - 1, 0)], pos[j]
        if divmod(i, per_column)[0] != divmod(j, per_column)[0]:
            continue
        start, end = (x0 + bw / 2, y0), (x1 + bw / 2, y1)
        ax.add_patch(
            FancyArrowPatch(
                start,
                end,
                connectionstyle="arc3,rad=-0.5",
                arrowstyle="-|>",
                mutation_scale=9,
                color="#cc4125",
                linewidth=1.2,
            )
        )
        ax.text(x1 + bw / 2 + 0.12, y1 + 0.25, "+", color="#cc4125", fontsize=11, fontweight="bold")
    x0, x1 = -bw / 2 - 0.2, (cols - 1) * colw + bw / 2 + 0.8
    if min_width > width:  # the same data units per inch as the natural size, centred
        extra = (x1 - x0) * (min_width / width - 1) / 2
        x0, x1 = x0 - extra, x1 + extra
    ax.set_xlim(x0, x1)
    ax.set_ylim(-(rows - 1) * step - bh, bh)
    ax.set_title(f"{s.model_name}: {s.total_params:,} parameters", fontsize=9)
    return Plot("model_diagram", title, render(fig))


def plot_model(model_or_bundle: Any, path: str | Path = "model.png", **kwargs: Any) -> Path:
    """Draw the network as boxes (Keras' ``plot_model``) into a PNG file and return its path.

    Example:
        >>> import torch, tempfile, os
        >>> p = plot_model(torch.nn.Sequential(torch.nn.Linear(4, 3)), os.path.join(tempfile.mkdtemp(), "m.png"), input_size=(2, 4))
        >>> p.stat().st_size > 0
        True
    """
    import matplotlib

    s = summary(model_or_bundle, **kwargs)
    with matplotlib.rc_context({"font.size": 9}):
        plot = model_diagram(s)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if plot.png is None:
        from dlpipe.core.errors import InvalidInputError

        raise InvalidInputError(f"the model cannot be drawn: {plot.note}")
    out.write_bytes(plot.png)
    return out
