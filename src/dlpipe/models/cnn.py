"""A configurable convolutional network: [conv-(batchnorm)-activation] x n -> pool blocks, then dense layers.

The flatten size is found by a dummy forward through the convolutional part at build time, never
computed by hand; ``dlpipe.models.shapes`` has the arithmetic when you want to check it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError, suggest
from dlpipe.models.fused import conv_pool_relu, stem_applies, stem_geometry
from dlpipe.models.mlp import ACTIVATIONS
from dlpipe.models.registry import register_model

__all__ = ["CNN", "default_cnn_spec", "seed_cnn_spec"]

# Activations that never decrease: max(act(a), act(b)) == act(max(a, b)), so pooling may come first.
MONOTONE = frozenset({"relu", "leaky_relu", "tanh", "sigmoid"})


class CNN(nn.Module):
    """Convolution blocks, then dense layers, then the output layer (logits).

    Args:
        in_channels: Image channels (1 grey, 3 RGB).
        image_size: (height, width) of the input.
        n_outputs: Width of the output layer.
        channels: Output channels per block. Defaults to `(32, 64)`.
        kernel_size: One kernel size, or one per block. Defaults to `3`.
        padding: ``"same"`` (keeps the size) or an integer. Defaults to `"same"`.
        convs_per_block: Convolutions in each block before its pooling. Defaults to `1`.
        batch_norm: BatchNorm after each convolution. Defaults to `True`.
        pool: Max-pooling size after each block (1: none); a map is not pooled below 4 pixels. Defaults to `2`.
        dense: Hidden dense layer sizes after flattening. Defaults to `(128,)`.
        dropout: Dropout before each dense layer. Defaults to `0.25`.
        activation: One of ``ACTIVATIONS``. Defaults to `"relu"`.
        norm_after_pool: Where a block's BatchNorm sits when its max-pool comes before a non-decreasing
            activation: ``False`` conv-BN-pool-act (the layout of bundles saved before it existed), ``True``
            conv-pool-BN-act, which normalises a quarter of the values (statistics of the pooled map).
            The default CNN (:func:`default_cnn_spec`) uses ``True``. Defaults to `False`.

    Example:
        >>> m = CNN(1, (28, 28), 10, channels=(32, 64), padding=0, batch_norm=False, dense=())
        >>> m(torch.zeros(2, 1, 28, 28)).shape, m.flat_features
        (torch.Size([2, 10]), 1600)
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int] | list[int],
        n_outputs: int,
        channels: tuple[int, ...] | list[int] = (32, 64),
        kernel_size: int | list[int] = 3,
        padding: str | int = "same",
        convs_per_block: int = 1,
        batch_norm: bool = True,
        pool: int = 2,
        dense: tuple[int, ...] | list[int] = (128,),
        dropout: float = 0.25,
        activation: str = "relu",
        norm_after_pool: bool = False,
    ) -> None:
        super().__init__()
        kernels = (
            [kernel_size] * len(channels) if isinstance(kernel_size, int) else list(kernel_size)
        )
        act = ACTIVATIONS[activation]
        layers: list[nn.Module] = []
        width, (h, w) = in_channels, image_size
        for out, k in zip(channels, kernels):
            pad = k // 2 if padding == "same" else int(padding)
            for _ in range(convs_per_block):
                layers.append(nn.Conv2d(width, out, k, padding=pad, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(act())
                width = out
                h, w = h + 2 * pad - k + 1, w + 2 * pad - k + 1
            if pool > 1 and min(h, w) // pool >= 4:
                if activation in MONOTONE:
                    # max-pool then activate: the same function (a non-decreasing activation commutes
                    # with max), but the activation and its backward touch a quarter of the values.
                    # Measured 1.4x for the seed CNN on this CPU (benchmarks/cnn_throughput.py).
                    # norm_after_pool moves the BatchNorm after the pool too (a different function:
                    # the pooled map's statistics): its forward and backward, a quarter of a step of
                    # the default CNN on the full-size map, then see a quarter of the values.
                    at = len(layers) - (2 if batch_norm and norm_after_pool else 1)
                    layers.insert(at, nn.MaxPool2d(pool))
                else:
                    layers.append(nn.MaxPool2d(pool))
                h, w = h // pool, w // pool
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            self.flat_features = int(
                self.features(torch.zeros(1, in_channels, *image_size)).numel()
            )
        head: list[nn.Module] = [nn.Flatten()]
        width = self.flat_features
        for size in dense:
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            head += [nn.Linear(width, size), act()]
            width = size
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(width, n_outputs))
        self.classifier = nn.Sequential(*head)

    head = "classifier"
    backbone_frozen = False

    @property
    def _stem(self) -> bool:
        """True when the first three layers are now conv -> 2x2 max-pool -> ReLU in the form the compiled
        first-block kernel computes (models/fused.py); read from the layers, so a layer swapped in later counts."""
        return len(self.features) >= 3 and stem_geometry(
            self.features[0], self.features[1], self.features[2]
        )

    def train(self, mode: bool = True) -> CNN:
        super().train(mode)
        if mode and self.backbone_frozen:
            self.features.eval()  # a frozen backbone keeps its BatchNorm statistics too
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.features
        # training only; the layers' geometry, dtype and the input are checked on every call (a conv swapped
        # in with reflect padding or stride 2 runs torch's kernels)
        if (
            self.training
            and len(feats) >= 3
            and isinstance(feats[0], nn.Conv2d)
            and stem_applies(feats[0], x, feats[1], feats[2])
        ):
            h = conv_pool_relu(x, feats[0])
            for layer in list(self.features)[3:]:
                h = layer(h)
            return self.classifier(h)
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, n_outputs)


def default_cnn_spec(
    in_channels: int, image_size: tuple[int, int] | list[int], n_outputs: int
) -> dict[str, Any]:
    """dlpipe's default CNN: two conv-pool-BN-ReLU blocks (32, 64), dense 128 with dropout.

    The batch norm follows the max-pool (``norm_after_pool``): it normalises a quarter of the values,
    which made a training step ~10-15% cheaper in CPU time on the project machine than conv-BN-pool
    (benchmarks/cnn_throughput.py, docs/images.md)."""
    return {
        "family": "cnn",
        "in_channels": in_channels,
        "image_size": list(image_size),
        "n_outputs": n_outputs,
        "channels": [32, 64],
        "kernel_size": 3,
        "padding": "same",
        "convs_per_block": 1,
        "batch_norm": True,
        "pool": 2,
        "dense": [128],
        "dropout": 0.25,
        "activation": "relu",
        "norm_after_pool": True,
    }


def seed_cnn_spec(
    in_channels: int = 1, image_size: tuple[int, int] | list[int] = (28, 28), n_outputs: int = 10
) -> dict[str, Any]:
    """The seed notes' Keras CNN: conv32(3x3)-pool-conv64(3x3)-pool-flatten-dense10, no padding, no BN."""
    return {
        "family": "cnn",
        "in_channels": in_channels,
        "image_size": list(image_size),
        "n_outputs": n_outputs,
        "channels": [32, 64],
        "kernel_size": 3,
        "padding": 0,
        "convs_per_block": 1,
        "batch_norm": False,
        "pool": 2,
        "dense": [],
        "dropout": 0.0,
        "activation": "relu",
    }


def _positive_ints(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    )


@register_model("cnn")
def _build_cnn(spec: dict[str, Any]) -> nn.Module:
    problems = []
    channels = spec.get("channels", [32, 64])
    if not _positive_ints(channels) or not channels:
        problems.append(
            f"`channels` is {channels!r} but must be a non-empty list of positive integers such as [32, 64]"
        )
    kernel = spec.get("kernel_size", 3)
    if not (isinstance(kernel, int) and kernel >= 1) and not (
        _positive_ints(kernel) and len(kernel) == len(channels or [])
    ):
        problems.append(
            f"`kernel_size` is {kernel!r} but must be a positive integer or one per block"
        )
    dense = spec.get("dense", [128])
    if not isinstance(dense, (list, tuple)) or (dense and not _positive_ints(dense)):
        problems.append(
            f"`dense` is {dense!r} but must be a list of positive integers such as [128] (or [])"
        )
    padding = spec.get("padding", "same")
    if padding != "same" and not (isinstance(padding, int) and padding >= 0):
        problems.append(f"`padding` is {padding!r} but must be 'same' or an integer >= 0")
    activation = spec.get("activation", "relu")
    if activation not in ACTIVATIONS:
        problems.append(
            f"`activation` is {activation!r}{suggest(activation, ACTIVATIONS)} but must be one of {', '.join(ACTIVATIONS)}"
        )
    size: Any = spec.get("image_size")
    if not (_positive_ints(size) and len(size) == 2):
        problems.append(f"`image_size` is {size!r} but must be [height, width]")
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    try:
        return CNN(
            in_channels=int(spec.get("in_channels", 1)),
            image_size=tuple(size),
            n_outputs=int(spec["n_outputs"]),
            channels=list(channels),
            kernel_size=kernel,
            padding=padding,
            convs_per_block=int(spec.get("convs_per_block", 1)),
            batch_norm=bool(spec.get("batch_norm", True)),
            pool=int(spec.get("pool", 2)),
            dense=list(dense),
            dropout=float(spec.get("dropout", 0.25)),
            activation=activation,
            norm_after_pool=bool(spec.get("norm_after_pool", False)),
        )
    except RuntimeError as exc:  # a kernel larger than what is left of the image
        raise InvalidConfigError(
            f"the CNN {list(channels)} with kernel {kernel!r} does not fit images of size {tuple(size)} ({str(exc).splitlines()[0]}); "
            "use fewer blocks, padding='same' or larger images."
        ) from None
