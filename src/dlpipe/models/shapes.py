"""Shape arithmetic for convolutions and pooling (the floor formula), and a layer-by-layer summary."""

from __future__ import annotations

from typing import Any

from dlpipe.core.errors import InvalidConfigError

__all__ = ["conv_output_size", "pool_output_size", "summary"]


def conv_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a convolution along one axis: floor((size + 2p - d(k-1) - 1) / s) + 1.

    Example:
        >>> conv_output_size(28, 3), conv_output_size(28, 3, padding=1), conv_output_size(32, 5, stride=2)
        (26, 28, 14)
    """
    problems = []
    for name, value, low in (
        ("size", size, 1),
        ("kernel", kernel, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("dilation", dilation, 1),
    ):
        if not isinstance(value, int) or value < low:
            problems.append(f"`{name}` is {value!r} but must be an integer >= {low}")
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise InvalidConfigError(
            f"a kernel of {kernel} (dilation {dilation}) does not fit an input of size {size} with padding {padding}; "
            "use a smaller kernel, more padding or a larger input."
        )
    return int(out)


def pool_output_size(
    size: int, kernel: int, stride: int | None = None, padding: int = 0, dilation: int = 1
) -> int:
    """Output length of max/avg pooling along one axis (``stride`` defaults to ``kernel``, as in torch).

    Example:
        >>> pool_output_size(28, 2), pool_output_size(7, 2), pool_output_size(7, 3, stride=2, padding=1)
        (14, 3, 4)
    """
    return conv_output_size(size, kernel, kernel if stride is None else stride, padding, dilation)


def summary(model: Any, input_size: tuple[int, ...], depth: int = 3) -> str:
    """Each layer's output shape and parameter count, as text (torchinfo does the walk)."""
    from torchinfo import summary as _summary

    return str(
        _summary(
            model,
            input_size=input_size,
            depth=depth,
            verbose=0,
            col_names=("output_size", "num_params"),
            device="cpu",
        )
    )
