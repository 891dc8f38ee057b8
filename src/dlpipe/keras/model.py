"""``Sequential`` and ``Model``: Keras' compile / fit / evaluate / predict / summary / save over dlpipe's engine.

The network is built from the layers for a known input shape (``Input(shape=...)``, a first layer's
``input_shape=``, or the first data seen). ``compile`` checks that each output's loss fits its last
layer and folds a final ``sigmoid``/``softmax`` into a logits-based loss. ``fit`` trains with dlpipe's
:class:`~dlpipe.training.Trainer` (in-memory tensors, index-sliced batches, one fused optimiser step)
and returns a :class:`History` whose ``.history`` is Keras' dict. ``save`` writes a dlpipe bundle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.keras import callbacks as kcb
from dlpipe.keras._data import DataMixin
from dlpipe.keras._graph import KerasNet, Plan, consumers, plan_from_tensors
from dlpipe.keras._layer import KerasTensor, Layer, activation_module, unknown_keywords
from dlpipe.keras._objective import Objective, Output, class_weights
from dlpipe.keras._training import LR_CALLBACKS, History, KerasTrainer, Printer, TrainMetrics
from dlpipe.keras.losses import folded_activation, resolve_loss
from dlpipe.keras.metrics import resolve_metrics
from dlpipe.keras.optimizers import resolve_optimizer
from dlpipe.keras.regularizers import Regularizer
from dlpipe.training.callbacks import Callback
from dlpipe.training.trainer import TensorData, evaluate_tensors, predict_logits

__all__ = ["Model", "Sequential", "History", "load_model", "model_from_json"]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


class Model(DataMixin):
    """A Keras-style model from the functional API: ``Model(inputs, outputs)``, one or several of each.

    Example:
        >>> from dlpipe.keras import Input, layers
        >>> inputs = Input(shape=(4,))
        >>> outputs = layers.Dense(1, activation="sigmoid")(layers.Dense(8, activation="relu")(inputs))
        >>> Model(inputs, outputs).count_params()
        49
    """

    def __init__(
        self,
        inputs: KerasTensor | Sequence[KerasTensor] | None = None,
        outputs: KerasTensor | Sequence[KerasTensor] | dict[str, KerasTensor] | None = None,
        name: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise unknown_keywords("`Model`", unknown, ["inputs", "outputs", "name"])
        self.name = name or ("sequential" if isinstance(self, Sequential) else "functional")
        self.layers: list[Layer] = []
        self._inputs: list[tuple[str, tuple[int, ...]]] = []
        self._plan: Plan = []
        self._output_names: list[str] = []
        self.net: KerasNet | None = None
        self.compiled: dict[str, Any] | None = None
        self.history: History | None = None
        self.feature_names_: list[str] | None = None
        self.target_name_: str | None = None
        self._fit_sample: np.ndarray | None = None
        if inputs is None and outputs is None:
            return
        if isinstance(outputs, dict):
            outputs = list(outputs.values())
        ins, outs = _as_list(inputs), _as_list(outputs)
        if (
            not ins
            or not outs
            or not all(isinstance(t, KerasTensor) and t.layer is None for t in ins)
            or not all(isinstance(t, KerasTensor) for t in outs)
        ):
            raise InvalidConfigError(
                "`Model(inputs, outputs)` needs inputs=Input(shape=...) (or a list of them) and outputs the result of calling layers on them (or a list)."
            )
        if any(t.layer is None for t in outs):
            raise InvalidConfigError(
                "an output of `Model(inputs, outputs)` is an Input itself; outputs must come from layers called on the inputs."
            )
        self.layers, self._plan = plan_from_tensors(ins, outs)
        self._inputs = [(str(t.name), tuple(t.shape[1:])) for t in ins]  # type: ignore[misc]
        self._output_names = [str(t.name) for t in outs]
        self._build()

    # ------------------------------------------------------------------ building
    @property
    def input_shape_(self) -> tuple[int, ...] | None:
        return self._inputs[0][1] if self._inputs else None

    @property
    def input_shape(self) -> Any:
        """Keras' ``(None, *shape)`` of the input (a list of them for several inputs)."""
        self._require_built("input_shape")
        shapes = [(None, *s) for _, s in self._inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self) -> Any:
        """Keras' ``(None, *shape)`` of the output (a list of them for several outputs)."""
        self._require_built("output_shape")
        shapes = [(None, *s) for s in self.output_shapes_]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_names(self) -> list[str]:
        return list(self._output_names)

    def _build(self) -> None:
        if not self.layers:
            raise InvalidConfigError(
                "the model has no layers; add layers such as Dense(1) before building it."
            )
        by_name = {layer.name: layer for layer in self.layers}
        readers = consumers(self._plan)
        shapes: dict[str, Any] = dict(self._inputs)
        modules: list[nn.Module] = []
        self._param_counts: list[int] = []
        folded: set[str] = set()
        activity: dict[int, Regularizer] = {}
        for i, (key, sources) in enumerate(self._plan):
            layer = by_name[key]
            fold = key in self._output_names and readers.get(key, 0) == 0
            arg = [shapes[s] for s in sources] if layer.n_inputs != 1 else shapes[sources[0]]
            module, shape = layer.build(arg, fold_activation=fold)
            layer.module = module
            if fold:
                folded.add(key)
            if layer.activity_regularizer is not None:
                activity[i] = layer.activity_regularizer
            modules.append(module)
            shapes[key] = shape
            self._param_counts.append(sum(p.numel() for p in module.parameters()))
        heads = [
            activation_module(by_name[k].activation) if k in folded else None
            for k in self._output_names
        ]
        self._shapes = shapes
        self.output_shapes_ = [shapes[k] for k in self._output_names]
        self.output_shape_ = self.output_shapes_[0]
        self.net = KerasNet(
            modules,
            self._plan,
            self.input_names,
            self._output_names,
            heads,
            activity,
            [s for _, s in self._inputs],
        )
        self._foldable = [k in folded for k in self._output_names]

    def _ensure_built(self, shapes: list[tuple[int, ...]]) -> None:
        if self.net is None:
            self._set_sequential_input(shapes[0])
            self._build()
            if self.compiled is not None:
                self._apply_compile()

    def _set_sequential_input(self, shape: tuple[int, ...]) -> None:
        raise InvalidConfigError("this model has no input shape")  # Sequential overrides

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

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by ``name`` or position (``index``)."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise InvalidConfigError(
                    f"`index` is {index} but the model has {len(self.layers)} layers."
                )
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        from dlpipe.core.errors import suggest

        names = [layer.name for layer in self.layers]
        raise InvalidConfigError(
            f"no layer named {name!r}{suggest(str(name), names)}; the layers are: {', '.join(names)}."
        )

    def get_weights(self) -> list[np.ndarray]:
        """Every layer's weights in Keras' layout, layer after layer."""
        self._require_built("get_weights")
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: list[Any]) -> None:
        """Set every layer's weights from a list shaped as :meth:`get_weights` returns it."""
        self._require_built("set_weights")
        counts = [len(layer.get_weights()) for layer in self.layers]
        if len(weights) != sum(counts):
            raise InvalidConfigError(
                f"`set_weights()` got {len(weights)} arrays but the model has {sum(counts)}; pass the list model.get_weights() returns."
            )
        at = 0
        for layer, n in zip(self.layers, counts):
            layer.set_weights(list(weights[at : at + n]))
            at += n

    # ------------------------------------------------------------------ compile
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
        **unknown: Any,
    ) -> None:
        """Choose optimizer (name or object), loss (Keras name; one per output as a list or dict) and metrics.

        ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and ``auto_scale_loss`` change how Keras
        runs, not what it computes; they are accepted and have no effect here.
        """
        if unknown:
            raise unknown_keywords(
                "`compile`",
                unknown,
                [
                    "optimizer",
                    "loss",
                    "loss_weights",
                    "metrics",
                    "weighted_metrics",
                    "run_eagerly",
                    "steps_per_execution",
                    "jit_compile",
                    "auto_scale_loss",
                ],
            )
        if loss is None:
            raise InvalidConfigError(
                "`loss` is missing; pass a loss such as 'binary_crossentropy', 'sparse_categorical_crossentropy' or 'mse'."
            )
        if weighted_metrics is not None:
            raise InvalidConfigError(
                "`weighted_metrics` is not supported by dlpipe.keras (metrics are unweighted); pass them as `metrics`."
            )
        if isinstance(loss, dict):
            losses: Any = {k: resolve_loss(v) for k, v in loss.items()}
        elif isinstance(loss, (list, tuple)):
            losses = [resolve_loss(v) for v in loss]
        else:
            losses = resolve_loss(loss)
        self.compiled = {
            "optimizer": resolve_optimizer(optimizer),
            "loss": losses,
            "loss_weights": loss_weights,
            "metrics_names": metrics,
        }
        if self.net is not None:
            self._apply_compile()
        elif isinstance(self, Sequential) and self.layers:
            # validate the names now; the loss/last-layer check needs only the layers
            last = self.layers[-1]
            units = getattr(last, "units", getattr(last, "filters", 0))
            folded_activation(
                self._per_output(losses, "loss")[0], last.activation, int(units), repr(last)
            )
            resolve_metrics(metrics, self._per_output(losses, "loss")[0].name, False, "linear")

    def _per_output(self, spec: Any, what: str, default: Any = None) -> list[Any]:
        """A compile argument given once, as a list (one per output) or a dict by output name -> one per output."""
        names = self._output_names or ["output"]
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in names]
            if unknown:
                raise InvalidConfigError(
                    f"`{what}` names the outputs {unknown} but the model's outputs are {names}; use the output layers' names."
                )
            return [spec.get(n, default) for n in names]
        if (
            isinstance(spec, list)
            and what != "metrics"
            or (what == "metrics" and isinstance(spec, list) and spec and isinstance(spec[0], list))
        ):
            if len(spec) != len(names):
                raise InvalidConfigError(
                    f"`{what}` lists {len(spec)} entries but the model has {len(names)} outputs {names}; pass one per output, or a dict by output name."
                )
            return list(spec)
        return [spec] * len(names)

    def _apply_compile(self) -> None:
        assert self.compiled is not None and self.net is not None
        losses = self._per_output(self.compiled["loss"], "loss")
        if any(loss is None for loss in losses):
            missing = [n for n, loss in zip(self._output_names, losses) if loss is None]
            raise InvalidConfigError(
                f"`loss` gives no loss for the outputs {missing}; pass a loss for every output."
            )
        weights = self._per_output(self.compiled["loss_weights"], "loss_weights", 1.0)
        metric_names = self._per_output(self.compiled["metrics_names"], "metrics")
        by_name = {layer.name: layer for layer in self.layers}
        outputs: list[Output] = []
        for j, name in enumerate(self._output_names):
            layer, shape, loss = by_name[name], self.output_shapes_[j], losses[j]
            fold = folded_activation(loss, layer.activation, int(shape[-1]), repr(layer))
            if fold and not self._foldable[j]:
                raise InvalidConfigError(
                    f"output {name!r} also feeds other layers, so its {layer.activation} cannot be folded into {loss.name!r}; end that branch with a separate output layer."
                )
            self.net.fold[j] = fold
            w = 1.0 if weights[j] is None else weights[j]
            if not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w):
                raise InvalidConfigError(
                    f"`loss_weights` holds {w!r} for output {name!r} but must hold finite numbers."
                )
            outputs.append(
                Output(
                    name,
                    tuple(shape),
                    loss,
                    fold,
                    layer.activation,
                    float(w),
                    resolve_metrics(metric_names[j], loss.name, fold, layer.activation),
                )
            )
        net = self.net
        layers = self.layers
        self.objective = Objective(
            outputs,
            lambda: [t for layer in layers for t in layer.penalty_terms()],
            net.take_activity,
        )

    def _require_compiled(self, what: str) -> None:
        if self.compiled is None:
            raise InvalidConfigError(
                f"`{what}()` needs a compiled model; call model.compile(optimizer=..., loss=...) first."
            )

    # ------------------------------------------------------------------ data
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
        class_weight: dict[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
        seed: int | None = None,
        **unknown: Any,
    ) -> History:
        """Train; returns a :class:`History` (``history.history["val_loss"]``...).

        ``class_weight`` ({class index: weight}) and ``sample_weight`` (one weight per row) scale each
        row's loss as in Keras (both given: multiplied); validation rows keep their sample weights.
        """
        if unknown:
            raise unknown_keywords("`fit`", unknown, _FIT_ARGS)
        for arg, value, default in (
            ("initial_epoch", initial_epoch, 0),
            ("steps_per_epoch", steps_per_epoch, None),
            ("validation_steps", validation_steps, None),
            ("validation_freq", validation_freq, 1),
        ):
            if value != default:
                raise InvalidConfigError(
                    f"`fit({arg}=...)` is {value!r}, which dlpipe.keras does not support (every epoch passes over all rows and is validated); leave it out."
                )
        self._require_compiled("fit")
        if shuffle is not True:
            import warnings

            from dlpipe.core.errors import DlpipeWarning

            warnings.warn(
                DlpipeWarning(
                    f"`fit(shuffle={shuffle!r})` has no effect: dlpipe's engine draws a new order of the rows every epoch."
                ),
                stacklevel=2,
            )
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise InvalidConfigError(f"`epochs` is {epochs!r} but must be a positive integer.")
        if not 0 <= validation_split < 1:
            raise InvalidConfigError(
                f"`validation_split` is {validation_split!r} but must be in [0, 1)."
            )
        xs = self._inputs_of(x, record=True)
        n = int(xs[0].shape[0])
        ys = self._targets(y, n, record=True)
        w = self._weights(sample_weight, n)
        if class_weight is not None:
            if len(self.objective.outputs) > 1:
                raise InvalidConfigError(
                    "`class_weight` applies to a model with one output; for several outputs pass `sample_weight`."
                )
            cw = class_weights(class_weight, ys[0], self.objective.outputs[0])
        else:
            cw = None
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                raise InvalidInputError(
                    "`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight_val)."
                )
            vw = validation_data[2] if len(validation_data) == 3 else None
            val = self._data(validation_data[0], validation_data[1], vw, "validation_data")
        elif validation_split > 0:
            # Keras takes the last rows, before any shuffling
            n_val = int(round(n * validation_split))
            if n_val < 1 or n_val >= n:
                raise InvalidConfigError(
                    f"`validation_split={validation_split}` leaves {n_val} of {n} rows for validation; use a larger split or pass validation_data."
                )
            cut = n - n_val
            val = TensorData(
                tuple(t[cut:] for t in xs),
                self.objective.pack([a[cut:] for a in ys], None if w is None else w[cut:], n_val),
            )
            xs, ys, n = [t[:cut] for t in xs], [a[:cut] for a in ys], cut
            w = None if w is None else w[:cut]
            cw = None if cw is None else cw[:cut]
        if cw is not None:
            w = cw if w is None else w * cw
        train = TensorData(tuple(xs), self.objective.pack(ys, w, n))
        if len(xs) == 1 and xs[0].dim() == 2:
            # the bundle's drift reference: up to 10,000 rows (fewer for wide inputs)
            keep = max(200, min(10_000, 200_000 // max(1, int(xs[0].shape[1]))))
            self._fit_sample = xs[0][:keep].numpy().copy()
        hooks: list[Callback] = []
        if self.objective.has_metrics:
            hooks.append(TrainMetrics(train, self.objective))
        with_lr = False
        trackers = []
        for cb in callbacks or ():
            if hasattr(cb, "set_model"):
                cb.set_model(self)
            if isinstance(cb, LR_CALLBACKS):
                with_lr = True
            if hasattr(cb, "on_run_saved"):
                trackers.append(cb)
            if isinstance(cb, kcb.Callback):
                hooks.append(kcb.KerasHooks(cb))
            elif isinstance(cb, Callback):
                hooks.append(cb)
            else:
                raise InvalidConfigError(
                    f"callback {cb!r} is not a dlpipe.keras.callbacks callback; subclass dlpipe.keras.callbacks.Callback."
                )
        if verbose == "auto" or (isinstance(verbose, int) and verbose > 0):
            hooks.append(Printer(epochs))
        run_seed = int(torch.randint(0, 2**31 - 1, (1,)).item()) if seed is None else seed
        assert self.compiled is not None and self.net is not None
        trainer = KerasTrainer(
            self.compiled["optimizer"],
            epochs=int(epochs),
            batch_size=int(batch_size or 32),
            callbacks=hooks,
            seed=run_seed,
            device="cpu",
        )
        metrics_fn = self.objective.metrics if self.objective.has_metrics else None
        self.net.record_activity = True
        try:
            h = trainer.fit(self.net, self.objective, train, val, metrics_fn=metrics_fn)
        finally:
            self.net.record_activity = False
            self.net.activity_terms = []
        self.history = History(
            h.records, {"epochs": epochs, "steps": len(h), "verbose": verbose}, self, with_lr
        )
        if trackers:
            from dlpipe.keras._bundle import report_to_trackers

            report_to_trackers(self, trackers)
        return self.history

    def _outputs(self, z: torch.Tensor) -> list[np.ndarray]:
        """The network's output split per output, with each folded activation applied."""
        assert self.net is not None
        outs = []
        at = 0
        n = z.shape[0]
        for j, shape in enumerate(self.output_shapes_):
            if len(self.output_shapes_) > 1:
                width = math.prod(shape)
                zj = z[:, at : at + width].reshape(n, *shape)
                at += width
            else:
                zj = z
            if self.net.fold[j]:
                zj = self.net.heads[j](zj)
            outs.append(zj.float().numpy())
        return outs

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Any = None,
        **unknown: Any,
    ) -> Any:
        """Outputs for ``x``: probabilities after a sigmoid/softmax last layer, values otherwise (a list for several outputs)."""
        if unknown:
            raise unknown_keywords(
                "`predict`", unknown, ["x", "batch_size", "verbose", "steps", "callbacks"]
            )
        xs = self._inputs_of(x)
        assert self.net is not None
        outs = self._outputs(predict_logits(self.net, xs))
        return outs[0] if len(outs) == 1 else outs

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Any = None,
        return_dict: bool = False,
        **unknown: Any,
    ) -> Any:
        """The loss (and compiled metrics) on ``(x, y)``: a float, or ``[loss, *metrics]`` as Keras returns."""
        if unknown:
            raise unknown_keywords(
                "`evaluate`",
                unknown,
                [
                    "x",
                    "y",
                    "batch_size",
                    "verbose",
                    "sample_weight",
                    "steps",
                    "callbacks",
                    "return_dict",
                ],
            )
        self._require_compiled("evaluate")
        xs = self._inputs_of(x)
        n = int(xs[0].shape[0])
        data = TensorData(
            tuple(xs), self.objective.pack(self._targets(y, n), self._weights(sample_weight, n), n)
        )
        assert self.net is not None
        metrics_fn = self.objective.metrics if self.objective.has_metrics else None
        self.net.record_activity = True
        try:
            values = evaluate_tensors(self.net, self.objective, data, metrics_fn)
        finally:
            self.net.record_activity = False
            self.net.activity_terms = []
        out = dict(zip(values, torch.stack([v.float() for v in values.values()]).tolist()))
        if return_dict:
            return out
        return out["loss"] if len(out) == 1 else list(out.values())

    # ------------------------------------------------------------------ describe / save
    def summary(self, print_fn: Callable[[str], Any] | None = None, **_: Any) -> None:
        """Print the layers, their output shapes and parameter counts."""
        self._require_built("summary")
        header = ("Layer (type)", "Output Shape", "Param #") + (
            ("Connected to",) if len(self._inputs) > 1 or len(self._output_names) > 1 else ()
        )
        rows = (
            [
                (f"{n} (InputLayer)", str((None, *s)), "0", "-")[: len(header)]
                for n, s in self._inputs
            ]
            if len(header) == 4
            else []
        )
        by_name = {layer.name: layer for layer in self.layers}
        for (key, sources), count in zip(self._plan, self._param_counts):
            layer = by_name[key]
            row = (
                f"{layer.name} ({type(layer).__name__})",
                str((None, *self._shapes[key])),
                f"{count:,}",
                ", ".join(sources),
            )
            rows.append(row[: len(header)])
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        line = "  ".join("-" * w for w in widths)
        text = [
            f'Model: "{self.name}"',
            line,
            "  ".join(h.ljust(w) for h, w in zip(header, widths)),
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
        """The model as JSON: inputs, layers with their wiring, outputs and compile settings."""
        from dlpipe.keras._bundle import model_config

        return model_config(self)

    def save(
        self,
        filepath: str | Path,
        overwrite: bool = True,
        *,
        feature_names: Sequence[str] | None = None,
        target: str | None = None,
        **unknown: Any,
    ) -> None:
        """Write a dlpipe bundle folder (manifest.json + weights.safetensors, never pickle).

        ``dlpipe predict/evaluate/serve/export/drift`` and :func:`dlpipe.load_bundle` read it like any
        bundle, and :func:`load_model` turns it back into this Keras model. A model on flat rows is a
        table bundle: its columns are ``feature_names`` (from a DataFrame given to ``fit``, else
        ``x0``, ``x1``...) and its target column ``target`` (a Series' name, else ``"y"``).
        """
        if unknown:
            raise unknown_keywords(
                "`save`", unknown, ["filepath", "overwrite", "feature_names", "target"]
            )
        from dlpipe.keras._bundle import save_bundle

        self._require_built("save")
        save_bundle(
            self, Path(filepath), overwrite=overwrite, feature_names=feature_names, target=target
        )

    def to_json(self, **_: Any) -> str:
        """The model's architecture (and compile settings) as JSON; :func:`model_from_json` rebuilds it."""
        import json

        return json.dumps(self.get_config())

    def save_weights(self, filepath: str | Path, overwrite: bool = True) -> None:
        """Write the weights alone to a safetensors file (whatever its suffix; never pickle)."""
        from safetensors.torch import save_file

        from dlpipe.core.files import atomic_file

        self._require_built("save_weights")
        assert self.net is not None
        path = Path(filepath)
        if path.exists() or path.is_symlink():
            if not overwrite or not _is_weights_file(path):
                raise InvalidConfigError(
                    f"`filepath` {str(path)!r} exists and {'may not be replaced (overwrite=False)' if overwrite is False else 'is not a weights file save_weights() wrote'}; "
                    "pass another path (dlpipe replaces only its own weights files)."
                )
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        with atomic_file(path, "`filepath`") as tmp:  # a fresh temporary name, renamed when written
            save_file(state, str(tmp), metadata={"format": "dlpipe-keras-weights"})

    def load_weights(self, filepath: str | Path) -> None:
        """Read weights written by :meth:`save_weights` into this model (names and shapes must match)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        self._require_built("load_weights")
        assert self.net is not None
        try:
            state = load_file(str(filepath))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InvalidInputError(
                f"{str(filepath)!r} could not be read as a weights file ({exc}); pass a file model.save_weights() wrote."
            ) from None
        own = self.net.state_dict()
        wrong = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
        if wrong or set(state) - set(own):
            raise InvalidInputError(
                f"the weights in {str(filepath)!r} do not fit this model (first mismatch: {(wrong or sorted(set(state) - set(own)))[0]!r}); load them into a model with the same layers."
            )
        self.net.load_state_dict(state)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} layers={len(self.layers)}>"


_FIT_ARGS = [
    "x",
    "y",
    "batch_size",
    "epochs",
    "verbose",
    "callbacks",
    "validation_split",
    "validation_data",
    "shuffle",
    "class_weight",
    "sample_weight",
    "initial_epoch",
    "steps_per_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
    "seed",
]


class Sequential(Model):
    """A plain stack of layers: ``Sequential([Input(shape=(20,)), Dense(64, activation="relu"), Dense(1, activation="sigmoid")])``.

    Example:
        >>> from dlpipe.keras import layers
        >>> m = Sequential([layers.Input(shape=(3,)), layers.Dense(2, activation="softmax")])
        >>> m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        >>> m.predict(np.zeros((4, 3))).shape
        (4, 2)
    """

    def __init__(
        self, layers: Sequence[Any] | None = None, name: str | None = None, **unknown: Any
    ) -> None:
        if unknown:
            raise unknown_keywords("`Sequential`", unknown, ["layers", "name"])
        super().__init__(name=name)
        self._input_name = "input_layer"
        for item in layers or ():
            self.add(item)

    def _set_sequential_input(self, shape: tuple[int, ...]) -> None:
        self._inputs = [(self._input_name, tuple(shape))]
        self._plan = []
        prev = self._input_name
        for layer in self.layers:
            self._plan.append((layer.name, [prev]))
            prev = layer.name
        self._output_names = [prev] if self.layers else []
        names = [self._input_name] + [layer.name for layer in self.layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidConfigError(
                f"the names {dup} are used by more than one layer; give each layer a unique `name`."
            )

    def add(self, layer: Any) -> None:
        """Append a layer (or set the input with ``Input(shape=...)`` first)."""
        if isinstance(layer, KerasTensor):
            if self.layers or layer.layer is not None:
                raise InvalidConfigError(
                    "Input(shape=...) must be the first item of a Sequential model."
                )
            self._input_name = str(layer.name)
            self._inputs = [(self._input_name, tuple(layer.shape[1:]))]  # type: ignore[arg-type]
            return
        if not isinstance(layer, Layer):
            raise InvalidConfigError(
                f"Sequential takes dlpipe.keras layers, not {type(layer).__name__}; use layers.Dense(...), layers.Conv2D(...) and friends."
            )
        if layer.n_inputs != 1:
            raise InvalidConfigError(
                f"{type(layer).__name__} merges several tensors, so it belongs in a functional Model, not a Sequential stack."
            )
        if not self.layers and not self._inputs and layer.input_shape is not None:
            self._inputs = [(self._input_name, tuple(layer.input_shape))]
        self.layers.append(layer)
        self.net = None
        if self._inputs:
            self._set_sequential_input(self._inputs[0][1])
            self._build()
            if self.compiled is not None:
                self._apply_compile()


def _is_weights_file(path: Path) -> bool:
    """Whether ``path`` is a regular file that :meth:`Model.save_weights` wrote (its safetensors metadata says so)."""
    from safetensors import safe_open

    if path.is_symlink() or not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("format") == "dlpipe-keras-weights"
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False


def model_from_json(json_string: str) -> Model:
    """Rebuild a model from :meth:`Model.to_json` (architecture only, fresh weights; compile it again)."""
    import json

    from dlpipe.keras._bundle import model_from_config

    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as exc:
        raise InvalidConfigError(
            f"`json_string` is not JSON ({exc}); pass what model.to_json() returned."
        ) from None
    if not isinstance(config, dict):
        raise InvalidConfigError(
            "`json_string` does not hold a model; pass what model.to_json() returned."
        )
    try:
        return model_from_config(config)
    except (KeyError, TypeError, IndexError) as exc:
        raise InvalidConfigError(
            f"`json_string` is not a complete model description ({type(exc).__name__}: {exc}); pass what model.to_json() returned."
        ) from None


def load_model(filepath: str | Path, compile: bool = True, **unknown: Any) -> Model:
    """Rebuild a model saved by :meth:`Model.save` (a dlpipe bundle) from its JSON and safetensors weights."""
    if unknown:
        raise unknown_keywords("`load_model`", unknown, ["filepath", "compile"])
    from dlpipe.keras._bundle import load_keras_model

    return load_keras_model(Path(filepath), compile=compile)
