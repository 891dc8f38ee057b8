"""Autoencoders: dense (tables), convolutional (images) and recurrent (sequences).

Every autoencoder has ``encode(x) -> z`` (the embedding), ``decode(z) -> reconstruction`` and
``forward(x) = decode(encode(x))``. Reconstructions are *logits* for [0, 1] images (the loss is
BCE-with-logits) and values for scaled tables and sequences (the loss is MSE): see
:mod:`dlpipe.tasks.generative`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import DlpipeWarning, InvalidConfigError
from dlpipe.models.mlp import ACTIVATIONS
from dlpipe.models.registry import register_model

__all__ = [
    "DenseAutoencoder",
    "ConvAutoencoder",
    "RecurrentAutoencoder",
    "DECODERS",
    "CELLS",
    "default_hidden",
]

DECODERS = ("transpose", "unpool")
CELLS = ("gru", "lstm")


def _dense_stack(sizes: list[int], activation: str, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


def default_hidden(n_inputs: int, latent: int) -> list[int]:
    """Encoder widths: ``[64, 32]``, and for a narrow code (``n_inputs >= 16 * latent``) a wide encoder
    ``[h, h/2]`` with ``h`` four times the input width as a power of two, within 64..512.

    A narrow code needs a wide encoder: on sklearn's 64-pixel digits with latent 2, hidden 64-32 kept
    the classes apart at kNN accuracy 0.73-0.79 and 256-128 at 0.82-0.87. A mild code does not: on
    breast_cancer (30 inputs, latent 8) the wider 128-64 reconstructed malignant rows too and lowered
    the anomaly ROC-AUC to 0.896-0.899 on two of three splits (benchmarks/RESULTS.md, "Generative").

    Example:
        >>> default_hidden(30, 8), default_hidden(64, 2), default_hidden(784, 16)
        ([64, 32], [256, 128], [512, 256])
    """
    if n_inputs < 16 * latent:
        return [64, 32]
    h = min(512, max(64, 2 ** round(math.log2(4 * n_inputs))))
    return [h, h // 2]


def warn_if_identity(latent: int, n_inputs: int) -> None:
    """A latent as wide as the input lets the autoencoder learn the identity (nothing is compressed)."""
    if latent >= n_inputs:
        warnings.warn(
            DlpipeWarning(
                f"`latent` is {latent} but the input has only {n_inputs} values, so the autoencoder can learn the identity "
                f"and its embeddings and anomaly scores mean little; choose a latent size below {n_inputs}."
            ),
            stacklevel=3,
        )


class DenseAutoencoder(nn.Module):
    """Dense encoder ``n_inputs -> hidden -> latent`` and a mirrored decoder ``latent -> hidden[::-1] -> n_inputs``.

    Args:
        n_inputs: Width of the (preprocessed) input rows.
        latent: Width of the code. Defaults to `8`.
        hidden: Encoder layer sizes; the decoder mirrors them. Defaults to `(64, 32)`.
        activation: One of ``ACTIVATIONS``. Defaults to `"relu"`.
        dropout: Dropout after each hidden layer. Defaults to `0.0`.

    Example:
        >>> ae = DenseAutoencoder(10, latent=3, hidden=(8,))
        >>> ae.encode(torch.zeros(4, 10)).shape, ae(torch.zeros(4, 10)).shape
        (torch.Size([4, 3]), torch.Size([4, 10]))
    """

    def __init__(
        self,
        n_inputs: int,
        latent: int = 8,
        hidden: tuple[int, ...] | list[int] = (64, 32),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        sizes = [n_inputs, *hidden]
        self.encoder = nn.Sequential(
            *_dense_stack(sizes, activation, dropout), nn.Linear(sizes[-1], latent)
        )
        back = [latent, *reversed(list(hidden))]
        self.decoder = nn.Sequential(
            *_dense_stack(back, activation, dropout), nn.Linear(back[-1], n_inputs)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(1))  # (B, F) -> (B, L)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x)).view_as(x)


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder for (C, H, W) images; the decoder upsamples by transposed
    convolutions or by max-unpooling with the pooling indices remembered from the encoder.

    Args:
        channels: Image channels (1 for grey). Defaults to `1`.
        size: Image height = width; must be divisible by ``2 ** len(widths)``. Defaults to `28`.
        latent: Width of the code. Defaults to `16`.
        widths: Feature maps per level (each level halves the resolution). Defaults to `(16, 32)`.
        decoder: ``"transpose"`` or ``"unpool"``. Defaults to `"transpose"`.
        dense: Width of a dense layer between the feature maps and the code, both ways (0: none); a
            narrow code embeds better through one. Defaults to `0`.

    Example:
        >>> ae = ConvAutoencoder(1, 8, latent=2, decoder="unpool")
        >>> ae(torch.zeros(3, 1, 8, 8)).shape
        torch.Size([3, 1, 8, 8])
    """

    def __init__(
        self,
        channels: int = 1,
        size: int = 28,
        latent: int = 16,
        widths: tuple[int, ...] | list[int] = (16, 32),
        decoder: str = "transpose",
        dense: int = 0,
    ) -> None:
        super().__init__()
        self.decoder_kind = decoder
        widths = list(widths)
        self.levels = len(widths)
        self.small = size // 2**self.levels
        self.widths = widths
        self.enc_convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, padding=1)
            for c_in, c_out in zip([channels, *widths[:-1]], widths)
        )
        self.pool = nn.MaxPool2d(2, return_indices=True)
        flat = widths[-1] * self.small * self.small
        if dense:
            self.to_latent: nn.Module = nn.Sequential(
                nn.Linear(flat, dense), nn.ReLU(), nn.Linear(dense, latent)
            )
            self.from_latent: nn.Module = nn.Sequential(
                nn.Linear(latent, dense), nn.ReLU(), nn.Linear(dense, flat)
            )
        else:
            self.to_latent, self.from_latent = nn.Linear(flat, latent), nn.Linear(latent, flat)
        outs = [widths[0], *widths[:-1]]  # decoder level i maps widths[i] -> outs[i]
        if decoder == "transpose":
            self.dec_layers = nn.ModuleList(
                nn.ConvTranspose2d(widths[i], outs[i], 2, stride=2) for i in range(self.levels)
            )
        else:
            self.unpool = nn.MaxUnpool2d(2)
            self.dec_layers = nn.ModuleList(
                nn.Conv2d(widths[i], outs[i], 3, padding=1) for i in range(self.levels)
            )
        self.head = nn.Conv2d(widths[0], channels, 3, padding=1)
        self.act = nn.ReLU()

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        indices = []
        for conv in self.enc_convs:
            x, idx = self.pool(self.act(conv(x)))  # (B, C, H, W) -> (B, C', H/2, W/2)
            indices.append(idx)
        return self.to_latent(x.flatten(1)), indices

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)[0]

    def decode(self, z: torch.Tensor, indices: list[torch.Tensor] | None = None) -> torch.Tensor:
        x = self.from_latent(z).view(-1, self.widths[-1], self.small, self.small)
        if self.decoder_kind == "unpool" and indices is None:
            raise InvalidConfigError(
                "an unpooling decoder needs the pooling indices of an encoded input, so it cannot decode a latent vector alone; use decoder='transpose' to decode free latents."
            )
        for i in reversed(range(self.levels)):
            if self.decoder_kind == "unpool":
                assert indices is not None
                x = self.unpool(
                    x, indices[i]
                )  # (B, C, h, w) -> (B, C, 2h, 2w), values back where the max was
            x = self.act(self.dec_layers[i](x))
        return self.head(x)  # logits (B, C, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, indices = self._encode(x)
        return self.decode(z, indices)


class RecurrentAutoencoder(nn.Module):
    """GRU/LSTM encoder-decoder for (B, T, F) windows: the last hidden state is projected to the code,
    the code is repeated over T steps and decoded by a second recurrent layer.

    Args:
        n_features: Values per time step.
        seq_len: Window length T.
        latent: Width of the code. Defaults to `8`.
        hidden: Recurrent state size. Defaults to `32`.
        cell: ``"gru"`` or ``"lstm"``. Defaults to `"gru"`.

    Example:
        >>> ae = RecurrentAutoencoder(2, 10, latent=4, cell="lstm")
        >>> ae(torch.zeros(3, 10, 2)).shape
        torch.Size([3, 10, 2])
    """

    def __init__(
        self, n_features: int, seq_len: int, latent: int = 8, hidden: int = 32, cell: str = "gru"
    ) -> None:
        super().__init__()
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.seq_len = seq_len
        self.encoder = rnn(n_features, hidden, batch_first=True)
        self.to_latent = nn.Linear(hidden, latent)
        self.decoder = rnn(latent, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_features)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.encoder(x)  # (B, T, H)
        return self.to_latent(out[:, -1])  # (B, L)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out, _ = self.decoder(z.unsqueeze(1).expand(-1, self.seq_len, -1))  # (B, T, L) -> (B, T, H)
        return self.head(out)  # (B, T, F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _check(spec: dict[str, Any], checks: list[tuple[bool, str]]) -> None:
    problems = [msg for ok, msg in checks if not ok]
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@register_model("autoencoder")
def _build_dense(spec: dict[str, Any]) -> nn.Module:
    latent = spec.get("latent", 8)
    hidden = list(
        spec.get("hidden")
        or default_hidden(int(spec["n_inputs"]), latent if _positive(latent) else 1)
    )
    activation = spec.get("activation", "relu")
    _check(
        spec,
        [
            (_positive(latent), f"`latent` is {latent!r} but must be a positive integer such as 8"),
            (
                all(_positive(h) for h in hidden),
                f"`hidden` is {hidden!r} but must be a list of positive integers such as [64, 32]",
            ),
            (
                activation in ACTIVATIONS,
                f"`activation` is {activation!r} but must be one of {', '.join(ACTIVATIONS)}",
            ),
        ],
    )
    return DenseAutoencoder(
        int(spec["n_inputs"]), latent, hidden, activation, float(spec.get("dropout", 0.0))
    )


@register_model("conv_autoencoder")
def _build_conv(spec: dict[str, Any]) -> nn.Module:
    widths = list(spec.get("widths") or [16, 32])
    size, latent, decoder = (
        int(spec["size"]),
        spec.get("latent", 16),
        spec.get("decoder", "transpose"),
    )
    _check(
        spec,
        [
            (
                _positive(latent),
                f"`latent` is {latent!r} but must be a positive integer such as 16",
            ),
            (
                decoder in DECODERS,
                f"`decoder` is {decoder!r} but must be one of {', '.join(DECODERS)}",
            ),
            (
                size % 2 ** len(widths) == 0,
                f"the image size {size} is not divisible by 2**{len(widths)} (one halving per level of `widths` {widths}); use fewer levels or resize the images",
            ),
        ],
    )
    return ConvAutoencoder(
        int(spec.get("channels", 1)), size, latent, widths, decoder, int(spec.get("dense", 0))
    )


@register_model("recurrent_autoencoder")
def _build_recurrent(spec: dict[str, Any]) -> nn.Module:
    latent, cell = spec.get("latent", 8), spec.get("cell", "gru")
    _check(
        spec,
        [
            (_positive(latent), f"`latent` is {latent!r} but must be a positive integer such as 8"),
            (cell in CELLS, f"`cell` is {cell!r} but must be one of {', '.join(CELLS)}"),
        ],
    )
    return RecurrentAutoencoder(
        int(spec["n_features"]),
        int(spec["seq_len"]),
        latent,
        int(spec.get("hidden_size", 32)),
        cell,
    )
