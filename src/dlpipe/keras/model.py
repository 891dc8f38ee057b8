"""``Sequential`` and ``Model``: Keras' compile / fit / evaluate / predict / summary / save over dlpipe's engine.

The network is built from the layer list for a known input shape (``Input(shape=...)``, a first
layer's ``input_shape=``, or the first data seen). ``compile`` checks that the loss fits the last
layer and folds a final ``sigmoid``/``softmax`` into a logits-based loss. ``fit`` trains with
dlpipe's :class:`~dlpipe.training.Trainer` (in-memory tensors, index-sliced batches, one fused
optimiser step) and returns a :class:`History` whose ``.history`` is Keras' dict.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.errors import BundleError, InvalidConfigError, InvalidInputError
from dlpipe.keras import callbacks as kcb
from dlpipe.keras.layers import KerasTensor, Layer, activation_module, layer_from_config
from dlpipe.keras.losses import Loss, folded_activation, loss_function, resolve_loss
from dlpipe.keras.metrics import resolve_metrics
from dlpipe.keras.optimizers import Optimizer, resolve_optimizer
from dlpipe.training.callbacks import Callback
from dlpipe.training.optim import FlatOptimizer
from dlpipe.training.trainer import TensorData, Trainer, evaluate_tensors, predict_logits

__all__ = ["Model", "Sequential", "History", "load_model"]

FORMAT = "dlpipe-keras"
FORMAT_VERSION = 1
_TRAIN_METRIC_ROWS = 4096


class _Net(nn.Module):
    """The built layers; the last layer's activation is kept apart so a loss can fold it."""

    def __init__(self, modules: list[nn.Module], head: nn.Module | None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(modules)
        self.head = head if head is not None else nn.Identity()
        self.fold = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.layers:
            x = m(x)
        return x if self.fold else self.head(x)


class History:
    """What ``fit`` returns: ``history`` maps each metric (``loss``, ``val_loss``, ``accuracy``...) to per-epoch values."""

    def __init__(
        self, records: list[dict[str, float]], params: dict[str, Any], model: Model
    ) -> None:
        skip = {"epoch", "time", "lr"}
        keys: list[str] = []
        for r in records:
            keys.extend(k for k in r if k not in skip and k not in keys)
        self.history: dict[str, list[float]] = {
            k: [float(r.get(k, float("nan"))) for r in records] for k in keys
        }
        self.epoch = list(range(len(records)))
        self.params = params
        self.model = model

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class _KerasTrainer(Trainer):
    """The engine with Keras' optimiser constants (epsilon 1e-7, RMSprop rho)."""

    def __init__(self, opt: Optimizer, **kwargs: Any) -> None:
        super().__init__(
            learning_rate=opt.learning_rate,
            optimizer=opt.kind,
            momentum=opt.momentum,
            nesterov=opt.nesterov,
            weight_decay=opt.weight_decay,
            **kwargs,
        )
        self.keras_opt = opt

    def make_optimizer(self, model: nn.Module) -> FlatOptimizer:
        o = self.keras_opt
        return FlatOptimizer(
            model.parameters(),
            o.kind,  # type: ignore[arg-type]
            learning_rate=self.learning_rate,
            momentum=o.momentum,
            nesterov=o.nesterov,
            weight_decay=o.weight_decay,
            betas=(o.beta_1, o.beta_2),
            eps=o.epsilon,
            alpha=o.rho,
        )


class _TrainMetrics(Callback):
    """Keras logs metrics on the training data too: measured at epoch end, in eval mode, on up to 4,096 rows."""

    def __init__(
        self,
        data: TensorData,
        loss_fn: Callable[..., torch.Tensor],
        metrics_fn: Callable[..., dict[str, torch.Tensor]],
    ) -> None:
        n = min(len(data), _TRAIN_METRIC_ROWS)
        self.data = TensorData(tuple(t[:n] for t in data.inputs), data.y[:n])
        self.loss_fn, self.metrics_fn = loss_fn, metrics_fn

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        values = evaluate_tensors(
            trainer.model, self.loss_fn, self.data.to(trainer.device), self.metrics_fn
        )
        values.pop("loss")
        numbers = torch.stack([v.float() for v in values.values()]).tolist() if values else []
        new = dict(zip(values, numbers))
        # Keras' key order: loss, metrics, val_loss, val_metrics
        ordered = (
            {k: logs[k] for k in ("epoch", "loss") if k in logs}
            | new
            | {k: v for k, v in logs.items() if k not in ("epoch", "loss")}
        )
        logs.clear()
        logs.update(ordered)
        trainer.history.records[-1] = dict(ordered)


class _Printer(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        parts = " - ".join(
            f"{k}: {v:.4f}" for k, v in logs.items() if k not in ("epoch", "time", "lr")
        )
        print(
            f"Epoch {epoch}/{self.epochs} - {logs.get('time', 0.0):.2f}s - {parts}",
            file=sys.stdout,
            flush=True,
        )


class Model:
    """A Keras-style model from the functional API: ``Model(inputs, outputs)`` over a chain of layers.

    Example:
        >>> from dlpipe.keras import Input, layers
        >>> inputs = Input(shape=(4,))
        >>> outputs = layers.Dense(1, activation="sigmoid")(layers.Dense(8, activation="relu")(inputs))
        >>> Model(inputs, outputs).count_params()
        49
    """

    def __init__(
        self,
        inputs: KerasTensor | None = None,
        outputs: KerasTensor | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or ("sequential" if isinstance(self, Sequential) else "functional")
        self.layers: list[Layer] = []
        self.input_shape_: tuple[int, ...] | None = None
        self.net: _Net | None = None
        self.compiled: dict[str, Any] | None = None
        self.history: History | None = None
        if inputs is None and outputs is None:
            return
        if isinstance(inputs, (list, tuple)) or isinstance(outputs, (list, tuple)):
            raise InvalidConfigError(
                "this functional API supports one input and one output (a chain of layers); pass Model(inputs, outputs) with single tensors."
            )
        if (
            not isinstance(inputs, KerasTensor)
            or not isinstance(outputs, KerasTensor)
            or inputs.layer is not None
        ):
            raise InvalidConfigError(
                "`Model(inputs, outputs)` needs inputs=Input(shape=...) and outputs the result of calling layers on it."
            )
        chain: list[Layer] = []
        node: KerasTensor | None = outputs
        while node is not None and node is not inputs:
            assert node.layer is not None
            chain.append(node.layer)
            node = node.parent
        if node is None:
            raise InvalidConfigError(
                "`outputs` was not computed from `inputs`; build outputs by calling layers on the Input you pass."
            )
        self.layers = chain[::-1]
        self.input_shape_ = tuple(inputs.shape[1:])  # type: ignore[arg-type]
        self._build(self.input_shape_)

    # ------------------------------------------------------------------ building
    def _build(self, shape: tuple[int, ...]) -> None:
        if not self.layers:
            raise InvalidConfigError(
                "the model has no layers; add layers such as Dense(1) before building it."
            )
        modules: list[nn.Module] = []
        self._shapes: list[tuple[int, ...]] = []
        head = None
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            module, shape = layer.build(shape, fold_activation=last)
            modules.append(module)
            self._shapes.append(shape)
            if last:
                head = activation_module(layer.activation)
        self.net = _Net(modules, head)
        self.output_shape_ = shape
        self._param_counts = [sum(p.numel() for p in m.parameters()) for m in modules]

    def _ensure_built(self, x_shape: tuple[int, ...]) -> None:
        if self.net is None:
            self.input_shape_ = x_shape
            self._build(x_shape)
            if self.compiled is not None:
                self._apply_compile()

    @property
    def built(self) -> bool:
        return self.net is not None

    def count_params(self) -> int:
        self._require_built("count_params")
        return sum(self._param_counts)

    def _require_built(self, what: str) -> None:
        if self.net is None:
            raise InvalidConfigError(
                f"`{what}()` needs a built model; start it with Input(shape=...) (or input_shape= on the first layer), or call fit() first."
            )

    # ------------------------------------------------------------------ compile
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Sequence[str] | str | None = None,
        **_: Any,
    ) -> None:
        """Choose optimizer (name or object), loss (Keras name) and metrics (names); checks the loss fits the last layer."""
        if loss is None:
            raise InvalidConfigError(
                "`loss` is missing; pass a loss such as 'binary_crossentropy', 'sparse_categorical_crossentropy' or 'mse'."
            )
        self.compiled = {
            "optimizer": resolve_optimizer(optimizer),
            "loss": resolve_loss(loss),
            "metrics_names": metrics,
        }
        if self.net is not None:
            self._apply_compile()
        else:  # validate the names now; the loss/last-layer check needs only the layers
            self._check_loss()
            resolve_metrics(metrics, self.compiled["loss"].name, False, "linear")

    def _last(self) -> tuple[str, int, str]:
        last = self.layers[-1]
        units = getattr(last, "units", getattr(last, "filters", 0))
        if self.net is not None:
            units = self.output_shape_[-1]
        return last.activation, int(units), repr(last)

    def _check_loss(self) -> bool:
        assert self.compiled is not None
        act, units, desc = self._last()
        return folded_activation(self.compiled["loss"], act, units, desc)

    def _apply_compile(self) -> None:
        assert self.compiled is not None and self.net is not None
        fold = self._check_loss()
        self.net.fold = fold
        loss: Loss = self.compiled["loss"]
        self._loss_fn = loss_function(loss)
        self._metrics = resolve_metrics(
            self.compiled["metrics_names"], loss.name, fold, self.layers[-1].activation
        )

    def _metrics_fn(self) -> Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]] | None:
        if not self._metrics:
            return None
        metrics = self._metrics
        return lambda z, y: {k: fn(z, y) for k, fn in metrics.items()}

    # ------------------------------------------------------------------ data
    def _x(self, x: Any, what: str = "x") -> torch.Tensor:
        arr = np.asarray(x)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            raise InvalidInputError(
                f"`{what}` holds {arr.dtype} values but the model needs numbers; encode text and categories first."
            )
        if arr.ndim < 2:
            raise InvalidInputError(
                f"`{what}` has shape {arr.shape} but the model needs a batch of rows, shape (n, ...); pass x.reshape(-1, 1) for one feature."
            )
        self._ensure_built(tuple(arr.shape[1:]))
        if tuple(arr.shape[1:]) != self.input_shape_:
            want = (None, *(self.input_shape_ or ()))
            hint = (
                " (add the channel axis: x[..., None])"
                if tuple(arr.shape[1:]) + (1,) == self.input_shape_
                else ""
            )
            raise InvalidInputError(
                f"`{what}` has shape {arr.shape} but the model's input expects {want}{hint}; pass data of that shape or change Input(shape=...)."
            )
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    def _y(self, y: Any, n: int, what: str = "y") -> torch.Tensor:
        assert self.compiled is not None
        loss = self.compiled["loss"].name
        arr = np.asarray(y)
        if arr.shape[0] != n:
            raise InvalidInputError(
                f"`{what}` has {arr.shape[0]} rows but x has {n}; pass one target per row."
            )
        out_shape = self.output_shape_
        if loss == "sparse_categorical_crossentropy":
            codes = arr.reshape(n, -1)
            if codes.shape[1] != 1 or not np.all(np.equal(np.mod(codes, 1), 0)):
                raise InvalidInputError(
                    f"`{what}` has shape {arr.shape} but sparse_categorical_crossentropy expects one integer class per row; for one-hot labels use loss='categorical_crossentropy'."
                )
            if codes.min() < 0 or codes.max() >= out_shape[-1]:
                raise InvalidInputError(
                    f"`{what}` holds classes {int(codes.min())}..{int(codes.max())} but the last layer has {out_shape[-1]} units; classes must be 0..{out_shape[-1] - 1}."
                )
            return torch.from_numpy(codes.reshape(-1).astype(np.int64))
        want = int(np.prod(out_shape))
        if arr.size != n * want:
            hint = (
                " (integer labels need loss='sparse_categorical_crossentropy', or one-hot them with utils.to_categorical)"
                if loss == "categorical_crossentropy"
                else ""
            )
            raise InvalidInputError(
                f"`{what}` has shape {arr.shape} but the model outputs {(None, *out_shape)}{hint}; pass targets of the output's shape."
            )
        return torch.from_numpy(np.ascontiguousarray(arr.reshape(n, *out_shape), dtype=np.float32))

    def _require_compiled(self, what: str) -> None:
        if self.compiled is None:
            raise InvalidConfigError(
                f"`{what}()` needs a compiled model; call model.compile(optimizer=..., loss=...) first."
            )

    # ------------------------------------------------------------------ fit / evaluate / predict
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Sequence[Any] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        seed: int | None = None,
        **_: Any,
    ) -> History:
        """Train; returns a :class:`History` (``history.history["val_loss"]``...)."""
        self._require_compiled("fit")
        xt = self._x(x)
        yt = self._y(y, xt.shape[0])
        if not 0 <= validation_split < 1:
            raise InvalidConfigError(
                f"`validation_split` is {validation_split!r} but must be in [0, 1)."
            )
        val = None
        if validation_data is not None:
            xv, yv = validation_data[0], validation_data[1]
            xvt = self._x(xv, "validation_data[0]")
            val = TensorData((xvt,), self._y(yv, xvt.shape[0], "validation_data[1]"))
        elif validation_split > 0:
            # Keras takes the last rows, before any shuffling
            n_val = int(round(xt.shape[0] * validation_split))
            if n_val < 1 or n_val >= xt.shape[0]:
                raise InvalidConfigError(
                    f"`validation_split={validation_split}` leaves {n_val} of {xt.shape[0]} rows for validation; use a larger split or pass validation_data."
                )
            val = TensorData((xt[-n_val:],), yt[-n_val:])
            xt, yt = xt[:-n_val], yt[:-n_val]
        train = TensorData((xt,), yt)
        assert self.net is not None
        hooks: list[Callback] = []
        if self._metrics:
            hooks.append(_TrainMetrics(train, self._loss_fn, self._metrics_fn()))  # type: ignore[arg-type]
        for cb in callbacks or ():
            if hasattr(cb, "set_model"):
                cb.set_model(self)
            if isinstance(cb, kcb.Callback):
                hooks.append(kcb.KerasHooks(cb))
            elif isinstance(cb, Callback):
                hooks.append(cb)
            else:
                raise InvalidConfigError(
                    f"callback {cb!r} is not a dlpipe.keras.callbacks callback; subclass dlpipe.keras.callbacks.Callback."
                )
        if verbose == "auto" or (isinstance(verbose, int) and verbose > 0):
            hooks.append(_Printer(epochs))
        run_seed = int(torch.randint(0, 2**31 - 1, (1,)).item()) if seed is None else seed
        assert self.compiled is not None
        trainer = _KerasTrainer(
            self.compiled["optimizer"],
            epochs=int(epochs),
            batch_size=int(batch_size or 32),
            callbacks=hooks,
            seed=run_seed,
            device="cpu",
        )
        h = trainer.fit(self.net, self._loss_fn, train, val, metrics_fn=self._metrics_fn())
        self.history = History(
            h.records, {"epochs": epochs, "steps": len(h), "verbose": verbose}, self
        )
        return self.history

    def predict(
        self, x: Any, batch_size: int | None = None, verbose: Any = 0, **_: Any
    ) -> np.ndarray:
        """Outputs for ``x``: probabilities after a sigmoid/softmax last layer, values otherwise."""
        xt = self._x(x)
        assert self.net is not None
        z = predict_logits(self.net, [xt])
        if self.net.fold:
            z = self.net.head(z)
        return z.float().numpy()

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        return_dict: bool = False,
        **_: Any,
    ) -> Any:
        """The loss (and compiled metrics) on ``(x, y)``: a float, or ``[loss, *metrics]`` as Keras returns."""
        self._require_compiled("evaluate")
        xt = self._x(x)
        data = TensorData((xt,), self._y(y, xt.shape[0]))
        assert self.net is not None
        values = evaluate_tensors(self.net, self._loss_fn, data, self._metrics_fn())
        out = dict(zip(values, torch.stack([v.float() for v in values.values()]).tolist()))
        if return_dict:
            return out
        return out["loss"] if len(out) == 1 else list(out.values())

    # ------------------------------------------------------------------ describe / save
    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print the layers, their output shapes and parameter counts."""
        self._require_built("summary")
        rows = [
            (f"{layer.name} ({type(layer).__name__})", str((None, *shape)), f"{n:,}")
            for layer, shape, n in zip(self.layers, self._shapes, self._param_counts)
        ]
        widths = [
            max(len(h), *(len(r[i]) for r in rows))
            for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))
        ]
        line = "  ".join("-" * w for w in widths)
        text = [
            f'Model: "{self.name}"',
            line,
            "  ".join(
                h.ljust(w) for h, w in zip(("Layer (type)", "Output Shape", "Param #"), widths)
            ),
            line,
        ]
        text += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        total = sum(self._param_counts)
        text += [
            line,
            f"Total params: {total:,}",
            f"Trainable params: {total:,}",
            "Non-trainable params: 0",
        ]
        (print_fn or print)("\n".join(text))

    def get_config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class_name": type(self).__name__,
            "name": self.name,
            "input_shape": list(self.input_shape_) if self.input_shape_ else None,
            "layers": [
                {"class_name": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
            "compile": None
            if self.compiled is None
            else {
                "optimizer": self.compiled["optimizer"].get_config(),
                "loss": self.compiled["loss"].get_config(),
                "metrics": self.compiled["metrics_names"],
            },
        }

    def save(self, filepath: str | Path, overwrite: bool = True, **_: Any) -> None:
        """Write a folder: ``model.json`` (layers, compile settings) + ``weights.safetensors``; never pickle."""
        from safetensors.torch import save_file

        from dlpipe.core.files import atomic_dir, write_json

        self._require_built("save")
        assert self.net is not None
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        # an existing folder is replaced only if it is an earlier dlpipe.keras model (its .dlpipe marker)
        with atomic_dir(filepath, overwrite=overwrite, kind="keras", what="`filepath`") as tmp:
            save_file(state, str(tmp / "weights.safetensors"), metadata={"format": FORMAT})
            write_json(tmp / "model.json", self.get_config())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} layers={len(self.layers)}>"


class Sequential(Model):
    """A plain stack of layers: ``Sequential([Input(shape=(20,)), Dense(64, activation="relu"), Dense(1, activation="sigmoid")])``.

    Example:
        >>> from dlpipe.keras import layers
        >>> m = Sequential([layers.Input(shape=(3,)), layers.Dense(2, activation="softmax")])
        >>> m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        >>> m.predict(np.zeros((4, 3))).shape
        (4, 2)
    """

    def __init__(self, layers: Sequence[Any] | None = None, name: str | None = None) -> None:
        super().__init__(name=name)
        for item in layers or ():
            self.add(item)

    def add(self, layer: Any) -> None:
        """Append a layer (or set the input with ``Input(shape=...)`` first)."""
        if isinstance(layer, KerasTensor):
            if self.layers or layer.layer is not None:
                raise InvalidConfigError(
                    "Input(shape=...) must be the first item of a Sequential model."
                )
            self.input_shape_ = tuple(layer.shape[1:])  # type: ignore[arg-type]
            return
        if not isinstance(layer, Layer):
            raise InvalidConfigError(
                f"Sequential takes dlpipe.keras layers, not {type(layer).__name__}; use layers.Dense(...), layers.Conv2D(...) and friends."
            )
        if not self.layers and self.input_shape_ is None and layer.input_shape is not None:
            self.input_shape_ = layer.input_shape
        self.layers.append(layer)
        self.net = None
        if self.input_shape_ is not None:
            self._build(self.input_shape_)
            if self.compiled is not None:
                self._apply_compile()


def load_model(filepath: str | Path, compile: bool = True) -> Model:
    """Rebuild a model saved by :meth:`Model.save` from its JSON layer list and safetensors weights."""
    from safetensors.torch import load_file

    root = Path(filepath)
    if not (root / "model.json").is_file():
        raise BundleError(
            f"{str(root)!r} is not a saved dlpipe.keras model (no model.json); pass the folder model.save() wrote."
        )
    config = json.loads((root / "model.json").read_text(encoding="utf-8"))
    if config.get("format") != FORMAT or config.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{str(root)!r} holds format {config.get('format')!r} version {config.get('format_version')!r}, but this dlpipe reads {FORMAT!r} version {FORMAT_VERSION}."
        )
    layers = [layer_from_config(item) for item in config["layers"]]
    model: Model = (
        Sequential(name=config.get("name"))
        if config.get("class_name") == "Sequential"
        else Model(name=config.get("name"))
    )
    model.layers = layers
    model.input_shape_ = tuple(config["input_shape"])
    model._build(model.input_shape_)
    assert model.net is not None
    state = load_file(str(root / "weights.safetensors"))
    own = model.net.state_dict()
    if set(state) != set(own) or any(tuple(state[k].shape) != tuple(own[k].shape) for k in own):
        raise BundleError(
            f"the weights in {str(root)!r} do not match the layers in its model.json; the folder is damaged, so re-save the model."
        )
    model.net.load_state_dict(state)
    if compile and config.get("compile"):
        c = config["compile"]
        model.compile(
            optimizer=Optimizer(**c["optimizer"]), loss=Loss(**c["loss"]), metrics=c["metrics"]
        )
    return model
