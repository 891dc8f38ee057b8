"""The engine: in-memory tensors, index-sliced batches, one flat fused optimiser, callbacks.

A training epoch is: one seeded permutation, one gather of the whole training set into that order,
then contiguous slices as batches (views, no copies, no per-sample collate). The loss is summed on
the device and read once per epoch, so the step loop never waits for the host.

This is the package's one epoch loop: every model kind trains here. A step is the supervised one
(``loss_fn(model(x), y)``) unless ``Trainer(step=...)`` passes a :class:`~dlpipe.training.steps.TrainStep`
(a GAN's two-optimiser step); checkpoints, early stopping, the NaN stop, schedules, trackers and
progress are the same either way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dlpipe.core.distributed import rank, world_size
from dlpipe.core.errors import InvalidConfigError, RunFailedError
from dlpipe.core.runtime import free_cores, resolve_device
from dlpipe.training.callbacks import Callback
from dlpipe.training.fastpath import FastMLPStep, make_fast_step
from dlpipe.training.history import History
from dlpipe.training.memory import keep_freed_memory
from dlpipe.training.optim import FlatOptimizer
from dlpipe.training.steps import TrainStep

__all__ = ["TensorData", "Trainer", "predict_logits", "LossFn", "MetricsFn"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MetricsFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
Transform = Callable[[list[torch.Tensor], bool], list[torch.Tensor]]

# Below this many multiply-adds per step, extra threads cost more in hand-off than they win.
_ONE_THREAD_FLOPS = 2e7
_EVAL_CHUNK = 8192


def _forward_flops(model: nn.Module, data: TensorData) -> int:
    """FLOPs of ``model``'s forward pass on the first sample of ``data`` (torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs = [t[:1] for t in data.inputs]
    if data.transform is not None:
        inputs = data.transform(inputs, False)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


@dataclass
class TensorData:
    """Model inputs and targets as tensors of equal length.

    ``transform(inputs, training)`` runs per batch (e.g. uint8 images -> normalised float, with
    augmentation when ``training``); tables leave it ``None``.
    """

    inputs: tuple[torch.Tensor, ...]
    y: torch.Tensor
    transform: Transform | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device) -> TensorData:
        return TensorData(
            tuple(t.to(device) for t in self.inputs), self.y.to(device), self.transform
        )


class Trainer:
    """Fits a model on in-memory tensors.

    Args:
        epochs: Passes over the training data. Defaults to `100`.
        batch_size: Rows per step. Defaults to `32`.
        learning_rate: The optimiser's step size. Defaults to `1e-3`.
        optimizer: ``"adamw"``, ``"adam"``, ``"sgd"`` or ``"rmsprop"``. Defaults to `"adamw"`.
        momentum: For SGD/RMSprop. Defaults to `0.9`.
        nesterov: Nesterov momentum (SGD). Defaults to `False`.
        weight_decay: L2 penalty (decoupled for AdamW). Defaults to `0.0`.
        clip_grad: Clip the global gradient norm to this value. Defaults to `None`.
        callbacks: Hooks such as :class:`EarlyStopping`. Defaults to `()`.
        seed: Seeds the batch order. Defaults to `0`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``. Defaults to `"auto"`.
        threads: CPU threads; ``None`` picks 1 for small models (measured faster), on a busy machine
            (load average >= cores) or when torch's deterministic algorithms are on (``deterministic=True``:
            the same count on every run), else torch's default. Defaults to `None`.
        step: What one batch does, for models the supervised step does not cover (e.g.
            :class:`~dlpipe.training.steps.GANStep`); ``None`` is ``loss_fn(model(x), y)``. Defaults to `None`.

    Example:
        >>> x = torch.randn(64, 3); y = (x.sum(1, keepdim=True) > 0).float()
        >>> t = Trainer(epochs=2, batch_size=16, device="cpu")
        >>> h = t.fit(nn.Linear(3, 1), torch.nn.functional.binary_cross_entropy_with_logits, TensorData((x,), y))
        >>> len(h)
        2
    """

    def __init__(
        self,
        *,
        epochs: int = 100,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        optimizer: str = "adamw",
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        clip_grad: float | None = None,
        callbacks: Sequence[Callback] = (),
        seed: int = 0,
        device: str = "auto",
        threads: int | None = None,
        step: TrainStep | None = None,
    ) -> None:
        problems = []
        if not isinstance(epochs, int) or epochs < 1:
            problems.append(f"`epochs` is {epochs!r} but must be a positive integer")
        if not isinstance(batch_size, int) or batch_size < 1:
            problems.append(f"`batch_size` is {batch_size!r} but must be a positive integer")
        if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
            problems.append(f"`learning_rate` is {learning_rate!r} but must be a positive number")
        if problems:
            raise InvalidConfigError("; ".join(problems) + ".")
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = float(learning_rate)
        self.optimizer_name = optimizer
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.clip_grad = clip_grad
        self.callbacks = list(callbacks)
        self.seed = seed
        self.device = resolve_device(device)
        self.threads = threads
        self.train_step = step
        # Hand-written forward/backward for plain dense stacks (training/fastpath.py); set False
        # to force autograd (the results agree; tests check it).
        self.fast_path = True
        self.stop_training = False
        self.history = History()
        self.total_steps = 0
        self.model: nn.Module
        self.optimizer: FlatOptimizer
        self.slices: list[tuple[int, int, float]] = []

    # ------------------------------------------------------------------ setup
    def make_optimizer(self, model: nn.Module) -> FlatOptimizer:
        uses_momentum = self.optimizer_name in ("sgd", "rmsprop")
        return FlatOptimizer(
            model.parameters(),
            self.optimizer_name,  # type: ignore[arg-type]
            learning_rate=self.learning_rate,
            momentum=self.momentum if uses_momentum else 0.0,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
        )

    def _pick_threads(self, model: nn.Module, train: TensorData) -> int | None:
        if self.device.type != "cpu":
            return None
        if self.threads is not None:
            return self.threads
        if torch.are_deterministic_algorithms_enabled():
            # `deterministic=True` (or torch.use_deterministic_algorithms): the count must not follow
            # the load average or the process's current setting, since reductions split across threads
            # sum in another order (a batch-norm MLP's weights moved by up to 3e-3 in 2 epochs).
            return 1
        free = free_cores()
        if free == 1:
            # Intra-op threads spin-wait on peers that the OS has descheduled: on a machine already
            # running as many jobs as it has cores, a second thread was measured 3-25x slower here, and
            # beside one other job on 2 cores (load 1.8) 30x (an MLP step of 200-512-256-1, batch 256).
            return 1
        if any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()):
            # A convolution reuses each weight at every position, so its parameters understate its
            # work: count the FLOPs of one sample's forward pass instead (backward ~ 2x forward).
            flops = 3 * _forward_flops(model, train) * self.batch_size
        else:
            flops = 6 * sum(p.numel() for p in model.parameters()) * self.batch_size
        if flops < _ONE_THREAD_FLOPS:
            return 1
        return None if free >= torch.get_num_threads() else free  # only the cores other jobs leave

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        model: nn.Module,
        loss_fn: LossFn | None,
        train: TensorData,
        val: TensorData | None = None,
        *,
        metrics_fn: MetricsFn | None = None,
    ) -> History:
        """Train ``model`` in place and return its :class:`History` (``loss_fn`` may be ``None`` with a ``step`` and no ``val``)."""
        if loss_fn is None:
            if self.train_step is None or (val is not None and len(val)):
                raise InvalidConfigError(
                    "`loss_fn` is None, but the supervised step and a validation split need one; pass a loss function, or a `step` and no `val`."
                )
            loss_fn = _no_loss
        n = len(train)
        if n == 0:
            raise InvalidConfigError(
                "the training split is empty; pass more rows or lower `val_fraction`/`test_fraction`."
            )
        threads = self._pick_threads(model, train)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults for each step's activations (training/memory.py)
        saved_threads = torch.get_num_threads()
        self.threads_used = threads or saved_threads
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            return self._fit(model, loss_fn, train, val, metrics_fn)
        finally:
            torch.set_num_threads(saved_threads)

    def _fit(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        train: TensorData,
        val: TensorData | None,
        metrics_fn: MetricsFn | None,
    ) -> History:
        device = self.device
        world, rnk = world_size(), rank()
        custom = self.train_step
        if custom is not None and world > 1:
            raise InvalidConfigError(
                f"a {type(custom).__name__} trains in one process only for now; run it in one process (set `nproc` to 1)."
            )
        self.model = model.to(device)
        self.optimizer = (
            self.make_optimizer(model) if custom is None else custom.make_optimizer(self, model)
        )
        if world > 1:
            _broadcast_state(
                model, self.optimizer
            )  # every rank starts from rank 0's weights (as DDP does)
        train = train.to(device)
        val = val.to(device) if val is not None and len(val) else None
        if val is not None and world > 1 and len(val) >= world:
            val = _shard(val, world, rnk)  # validation metrics are all-reduced below
        n, bs = len(train), min(self.batch_size, len(train))
        steps_per_epoch = math.ceil(n / bs)
        last = n - (steps_per_epoch - 1) * bs
        if custom is not None and custom.drop_last:
            steps_per_epoch = max(1, n // bs)
        elif steps_per_epoch > 1 and last < max(2, world):
            # A 1-row last batch breaks BatchNorm and adds noise (and with several ranks one of them
            # would get no rows): it rejoins the next epoch's shuffle.
            steps_per_epoch -= 1
        self.total_steps = steps_per_epoch * self.epochs
        self.history = History()
        self.stop_training = False
        batch_hooks = [cb for cb in self.callbacks if hasattr(cb, "on_batch_end")]
        # Resumable state: a callback's on_fit_start may restore weights, optimizer, this generator
        # (the batch order), the history and start_epoch (the last finished epoch).
        self.generator = torch.Generator().manual_seed(self.seed)
        self.start_epoch = 0
        # Each global batch of `bs` rows is split across ranks (DistributedSampler semantics on index
        # slices); the rank's share of the rows weights its gradient, so the all-reduced sum is the
        # global batch's mean gradient: the same step as one process with the same batch.
        self.slices = slices = [
            _local_rows(b * bs, min((b + 1) * bs, n), world, rnk) for b in range(steps_per_epoch)
        ]
        if custom is not None:
            custom.on_fit_start(self, train)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        gen = self.generator
        opt, logs = self.optimizer, {}
        step = self.start_epoch * steps_per_epoch
        fast: FastMLPStep | None = None
        if custom is None and self.fast_path and train.transform is None and len(train.inputs) == 1:
            fast = make_fast_step(model, loss_fn)
        # Fast path on one process: logits go into one epoch buffer and the epoch loss is one op at
        # the end (the row-weighted mean) instead of a loss op per step.
        used = slices[-1][1] if slices else 0
        epoch_logits = fast.logits_buffer(used, device) if fast is not None and world == 1 else None
        for epoch in range(self.start_epoch + 1, self.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(n, generator=gen).to(device)  # the same on every rank
            if fast is not None:
                fast.new_epoch()
            xs = [t[perm] for t in train.inputs]  # one gather per epoch; batches below are views
            ys = train.y[perm]
            if custom is not None:
                # A custom step (GAN...): checked once per epoch, so the default loop below pays nothing.
                scalars = self._custom_epoch(custom, epoch, xs, ys, train, step, batch_hooks)
                step += len(slices)
            total = torch.zeros((), device=device)
            for lo, hi, share in slices if custom is None else ():
                xb = [x[lo:hi] for x in xs]
                loss: torch.Tensor | None
                if epoch_logits is not None and fast is not None:
                    fast(
                        xb[0], ys[lo:hi], epoch_logits[lo:hi]
                    )  # writes .grad directly: no zero_grad needed
                    loss = None
                elif fast is not None:
                    loss = fast(xb[0], ys[lo:hi])
                else:
                    if train.transform is not None:
                        xb = train.transform(xb, True)
                    logits = model(*xb)
                    loss = loss_fn(logits, ys[lo:hi])
                    opt.zero_grad()
                    loss.backward()
                if world > 1:
                    _all_reduce_grads(opt, share)
                    loss = loss * share if loss is not None else None
                if self.clip_grad is not None:
                    opt.grad_norm_clip_(self.clip_grad)
                opt.step()
                if loss is not None:
                    total += loss.detach()
                step += 1
                for cb in batch_hooks:
                    cb.on_batch_end(self, step)  # type: ignore[attr-defined]
            if epoch_logits is not None:
                with torch.no_grad():
                    scalars = {"loss": loss_fn(epoch_logits, ys[:used])}
            elif custom is None:
                scalars = {"loss": total / steps_per_epoch}
            if val is not None:
                scalars.update(
                    {
                        f"val_{k}": v
                        for k, v in evaluate_tensors(model, loss_fn, val, metrics_fn).items()
                    }
                )
            stacked = torch.stack([v.float().to(device) for v in scalars.values()])
            if world > 1:
                stacked = _all_reduce_epoch(
                    stacked, val, n_val_total=len(val) if val is not None else 0
                )
            values = stacked.tolist()  # the one host sync per epoch
            logs = {
                "epoch": float(epoch),
                **dict(zip(scalars, values)),
                "lr": opt.lr,
                "time": time.perf_counter() - t0,
            }
            if not math.isfinite(logs["loss"]) or (
                custom is not None and not all(map(math.isfinite, values))
            ):
                if custom is None:
                    raise RunFailedError(
                        f"the training loss became {logs['loss']} at epoch {epoch}; lower `learning_rate` (now {opt.lr:g}) or set `clip_grad`."
                    )
                custom.on_nonfinite(
                    self, epoch, logs
                )  # raises, or restores good weights: stop here
                self.history.stopped_epoch = epoch
                break
            self.history.append(logs)
            if custom is not None:
                custom.on_epoch_end(self, epoch, logs)
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, logs)
            if world > 1:
                # Early stopping and LR schedules decide on rank 0; every rank follows.
                self.stop_training, opt.lr = _broadcast_decision(self.stop_training, opt.lr, device)
            if self.stop_training:
                break
        if custom is not None:
            custom.on_fit_end(self)
        for cb in self.callbacks:
            cb.on_fit_end(self, logs)
        model.eval()
        return self.history

    def _custom_epoch(
        self,
        custom: TrainStep,
        epoch: int,
        xs: list[torch.Tensor],
        ys: torch.Tensor,
        train: TensorData,
        step: int,
        batch_hooks: list[Callback],
    ) -> dict[str, torch.Tensor]:
        """One epoch of a custom step: its per-batch values summed on the device, averaged (no host sync)."""
        custom.on_epoch_start(self, epoch)
        total: torch.Tensor | None = None
        keys: list[str] = []
        for lo, hi, _ in self.slices:
            xb = [x[lo:hi] for x in xs]
            if train.transform is not None:
                xb = train.transform(xb, True)
            out = custom(self, xb, ys[lo:hi])
            values = torch.stack([v.float() for v in out.values()])
            if total is None:
                keys, total = list(out), values
            else:
                total += values
            step += 1
            for cb in batch_hooks:
                cb.on_batch_end(self, step)  # type: ignore[attr-defined]
        assert total is not None and "loss" in keys, "a TrainStep returns a dict holding 'loss'"
        return dict(zip(keys, total / len(self.slices)))


def _no_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    raise AssertionError("a custom step computes its own losses")  # never called: fit() checks


def _local_rows(start: int, stop: int, world: int, rnk: int) -> tuple[int, int, float]:
    """This rank's rows of the global batch [start, stop) and its share of them (array_split style)."""
    if world == 1:
        return start, stop, 1.0
    m = stop - start
    q, r = divmod(m, world)
    lo = start + rnk * q + min(rnk, r)
    hi = lo + q + (1 if rnk < r else 0)
    return lo, hi, (hi - lo) / m


def _shard(data: TensorData, world: int, rnk: int) -> TensorData:
    lo, hi, _ = _local_rows(0, len(data), world, rnk)
    return TensorData(tuple(t[lo:hi] for t in data.inputs), data.y[lo:hi], data.transform)


def _broadcast_state(model: nn.Module, opt: FlatOptimizer) -> None:
    import torch.distributed as dist

    for g in opt.groups:
        dist.broadcast(g.flat, 0)
    for buf in model.buffers():
        dist.broadcast(buf, 0)


def _all_reduce_grads(opt: FlatOptimizer, share: float) -> None:
    import torch.distributed as dist

    for g in opt.groups:  # one collective per flat buffer (DDP issues one per bucket)
        g.grad.mul_(share)
        dist.all_reduce(g.grad)


def _all_reduce_epoch(
    stacked: torch.Tensor, val: TensorData | None, n_val_total: int
) -> torch.Tensor:
    """Sum the rank-weighted training loss; average validation values weighted by shard size."""
    import torch.distributed as dist

    n_local = float(len(val)) if val is not None else 0.0
    counts = torch.tensor([n_local], device=stacked.device)
    dist.all_reduce(counts)
    weights = torch.ones_like(stacked)
    if val is not None and counts.item() > 0:
        weights[1:] = n_local / counts.item()
    out = stacked * weights
    dist.all_reduce(out)
    return out


def _broadcast_decision(stop: bool, lr: float, device: torch.device) -> tuple[bool, float]:
    import torch.distributed as dist

    flag = torch.tensor([float(stop), lr], dtype=torch.float64, device=device)
    dist.broadcast(flag, 0)
    return bool(flag[0].item()), float(flag[1].item())


def evaluate_tensors(
    model: nn.Module, loss_fn: LossFn, data: TensorData, metrics_fn: MetricsFn | None = None
) -> dict[str, torch.Tensor]:
    """Loss (and on-device metrics) over ``data`` in eval mode; values stay tensors (no sync)."""
    logits = predict_logits(model, data.inputs, transform=data.transform)
    y = data.y.to(logits.device)
    with torch.inference_mode():
        out = {"loss": loss_fn(logits, y)}
        if metrics_fn is not None:
            out.update(metrics_fn(logits, y))
    return out


def predict_logits(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    transform: Transform | None = None,
    chunk: int = _EVAL_CHUNK,
) -> torch.Tensor:
    """Forward ``inputs`` in eval mode under ``inference_mode``, in chunks; returns logits on the model's device."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        n = int(inputs[0].shape[0])
        outs: list[torch.Tensor] = []
        with torch.inference_mode():
            for s in range(0, max(n, 1), chunk):
                xb = [t[s : s + chunk].to(device) for t in inputs]
                if transform is not None:
                    xb = transform(xb, False)
                outs.append(model(*xb))
        return torch.cat(outs) if len(outs) > 1 else outs[0]
    finally:
        model.train(was_training)
