"""N-BEATS-style forecaster (Oreshkin et al., 2020, the "generic" architecture): an MLP on the window.

Blocks of fully connected layers read the flattened window; each block emits a *forecast* (summed
over blocks) and, except the last, a *backcast* (subtracted from what the next block reads). Before the first
block each window is made level- and scale-free: its last row is subtracted and it is divided by its
mean absolute step-to-step change (per column), and the forecast is scaled back, so one network
serves series of any level and size (a global model across many series). The network predicts the
change from the last observed value, so an untrained network starts near the naive forecast.

Spec keys: ``n_features`` (F), ``n_outputs`` (horizon x targets), ``lookback`` (L), ``horizon``,
``target_index``, ``hidden`` (the layer widths of each block; defaults to `[256, 256]`), ``blocks``
(defaults to `3`), ``dropout``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.models._sequence import check_spec
from dlpipe.models.registry import register_model

__all__ = ["NBeatsNet"]


class _Block(nn.Module):
    def __init__(
        self, n_in: int, hidden: list[int], n_out: int, dropout: float, *, backcast: bool = True
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        # the last block's backcast would feed nothing, so it has none
        self.backcast = nn.Linear(width, n_in) if backcast else None
        self.forecast = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        h = self.body(x)
        return (self.backcast(h) if self.backcast is not None else None), self.forecast(h)


class NBeatsNet(nn.Module):
    """Stacked backcast/forecast MLP blocks on a normalised window; see the module docstring.

    Example:
        >>> spec = {"family": "nbeats", "n_features": 1, "n_outputs": 3, "lookback": 8, "horizon": 3,
        ...         "target_index": [0], "hidden": [16], "blocks": 2}
        >>> NBeatsNet(spec)(torch.zeros(4, 8, 1)).shape
        torch.Size([4, 3])
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        lookback = spec.get("lookback")
        blocks = spec.get("blocks", 3)
        extra = []
        if not isinstance(lookback, int) or lookback < 1:
            extra.append(
                f"`lookback` is {lookback!r} but the nbeats family needs a positive integer"
            )
        if not isinstance(blocks, int) or isinstance(blocks, bool) or not 1 <= blocks <= 64:
            extra.append(f"`blocks` is {blocks!r} but must be an integer from 1 to 64")
        hidden = check_spec(spec, [256, 256], extra=extra)
        self.lookback, self.n_features = int(lookback), int(spec["n_features"])  # type: ignore[arg-type]
        self.horizon = int(spec.get("horizon", 1))
        self.target_index = [int(i) for i in spec.get("target_index") or [0]]
        k = len(self.target_index)
        if int(spec["n_outputs"]) % k:
            raise InvalidConfigError(
                f"`n_outputs` is {spec['n_outputs']!r} but must be horizon x targets ({k} targets)."
            )
        self.steps = int(spec["n_outputs"]) // k
        n_in = self.lookback * self.n_features
        n = int(blocks)
        self.blocks = nn.ModuleList(
            _Block(
                n_in,
                hidden,
                int(spec["n_outputs"]),
                float(spec.get("dropout", 0.0)),
                backcast=i < n - 1,
            )
            for i in range(n)
        )

    def upgrade_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A saved state without the keys this version no longer has: bundles saved before the last
        block lost its (unused) backcast layer still load, with the same forecasts."""
        stale = f"blocks.{len(self.blocks) - 1}.backcast."
        return {k: v for k, v in state.items() if not k.startswith(stale)}

    def example_inputs(self) -> list[torch.Tensor]:
        return [torch.zeros(2, self.lookback, self.n_features)]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b = x.shape[0]
        last = x[:, -1:, :]  # (B, 1, F)
        step = (x[:, 1:] - x[:, :-1]).abs().mean(dim=1, keepdim=True)  # (B, 1, F)
        scale = torch.where(
            step > 1e-6, step, torch.ones_like(step)
        )  # a flat window is left unscaled
        residual = ((x - last) / scale).reshape(b, -1)  # (B, L * F)
        forecast = torch.zeros(
            b, self.steps * len(self.target_index), dtype=x.dtype, device=x.device
        )
        for block in self.blocks:
            back, fore = block(residual)
            if back is not None:
                residual = residual - back
            forecast = forecast + fore
        out = forecast.reshape(b, self.steps, -1)  # (B, H, K)
        t_scale = scale[:, :, self.target_index]  # (B, 1, K)
        t_last = last[:, :, self.target_index]
        out = out * t_scale + t_last
        return out.reshape(b, -1)  # (B, H * K) step-major


@register_model("nbeats")
def _build(spec: dict[str, Any]) -> nn.Module:
    return NBeatsNet(spec)
