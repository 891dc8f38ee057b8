"""Trainer(step=...): a GAN trains in the engine's one epoch loop, so checkpoints, resume, schedules
and the NaN stop work as for any model (issue #16, item 2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlpipe.models.gan import GANPair, MLPDiscriminator, MLPGenerator
from dlpipe.training import Callback, CosineSchedule, TensorData, Trainer
from dlpipe.training.checkpoint import Checkpoint, read_checkpoint
from dlpipe.training.optim import FlatOptimizer
from dlpipe.training.steps import GANStep, OptimizerSet


class _Crash(Callback):
    checkpoint_state = False

    def __init__(self, at: int) -> None:
        self.at = at

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.at:
            raise KeyboardInterrupt  # after this epoch's checkpoint (the checkpoint runs first)


class _SeesCheckpoint(Callback):
    """After each epoch, the epoch the checkpoint file on disk holds (it runs after the Checkpoint)."""

    checkpoint_state = False

    def __init__(self, directory) -> None:
        self.directory, self.epochs = directory, []

    def on_epoch_end(self, trainer, epoch, logs):
        self.epochs.append(read_checkpoint(self.directory, tensors=False)[1]["epoch"])


def _rows() -> TensorData:
    x = torch.randn(96, 5, generator=torch.Generator().manual_seed(2)) @ torch.randn(
        5, 5, generator=torch.Generator().manual_seed(3)
    )
    return TensorData((x,), x.new_empty(len(x), 0))


def _fit(directory, *, resume=False, crash_at=None, epochs=4, extra=()):
    torch.manual_seed(0)
    pair = GANPair(MLPGenerator(3, 5, hidden=(16,)), MLPDiscriminator(5, hidden=(16,)))
    callbacks = [Checkpoint(directory, {"config": {"gan": 1}}, resume=resume), *extra]
    if crash_at is not None:
        callbacks.append(_Crash(crash_at))
    step = GANStep(3, grid_every=1, n_grid=4)
    trainer = Trainer(
        epochs=epochs,
        batch_size=32,
        learning_rate=2e-3,
        seed=5,
        device="cpu",
        callbacks=callbacks,
        step=step,
    )
    history = trainer.fit(pair, None, _rows())
    return pair, history, step


def test_a_gan_step_writes_a_checkpoint_every_epoch_with_both_networks_and_optimizers(tmp_path):
    spy = _SeesCheckpoint(tmp_path / "ck")
    _, history, _ = _fit(tmp_path / "ck", epochs=3, extra=[spy])
    assert spy.epochs == [1, 2, 3]
    assert list(history.history) == [
        "epoch",
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
        "loss",
        "lr",
        "time",
    ]
    tensors, state = read_checkpoint(tmp_path / "ck")
    assert any(k.startswith("model/generator.") for k in tensors) and any(
        k.startswith("model/discriminator.") for k in tensors
    )
    assert (
        state["optimizer"]["groups"] == 2 and state["finished"]
    )  # the generator's Adam, then the discriminator's
    assert sorted(state["callbacks"]) == [
        "step:GANStep"
    ]  # its sample grids, so a resumed run keeps the early ones


def test_a_gan_resumed_after_a_crash_ends_with_the_same_weights_and_grids(tmp_path):
    whole, h_whole, s_whole = _fit(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "crashed", crash_at=2)
    assert read_checkpoint(tmp_path / "crashed")[1]["epoch"] == 2
    resumed, h_resumed, s_resumed = _fit(tmp_path / "crashed", resume=True)
    for (k, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    assert [r["g_loss"] for r in h_whole.records] == [r["g_loss"] for r in h_resumed.records]
    assert sorted(s_resumed.grids) == [1, 2, 3, 4] and all(
        torch.equal(s_whole.grids[e], s_resumed.grids[e]) for e in s_whole.grids
    )


def test_a_schedule_moves_both_gan_optimizers():
    torch.manual_seed(0)
    pair = GANPair(MLPGenerator(3, 5, hidden=(8,)), MLPDiscriminator(5, hidden=(8,)))
    trainer = Trainer(
        epochs=2,
        batch_size=32,
        learning_rate=1e-3,
        seed=0,
        device="cpu",
        callbacks=[CosineSchedule()],
        step=GANStep(3),
    )
    trainer.fit(pair, None, _rows())
    rates = [opt.lr for opt in trainer.optimizer.optimizers]
    assert (
        rates[0] == rates[1] == pytest.approx(1e-5)
    )  # the cosine's end: min_factor 0.01 of the start


def test_optimizer_set_state_round_trips_in_the_single_optimizer_format():
    a, b = nn.Linear(2, 1), nn.Linear(3, 1)
    opts = OptimizerSet(
        [FlatOptimizer(a.parameters(), "adam"), FlatOptimizer(b.parameters(), "adam")]
    )
    (a(torch.ones(4, 2)).sum() + b(torch.ones(4, 3)).sum()).backward()
    for opt in opts.optimizers:
        opt.step()
    state = opts.state_dict()
    assert state["kind"] == "adam" and state["steps"] == 1 and len(state["groups"]) == 2
    c, d = nn.Linear(2, 1), nn.Linear(3, 1)
    other = OptimizerSet(
        [FlatOptimizer(c.parameters(), "adam"), FlatOptimizer(d.parameters(), "adam")]
    )
    other.load_state_dict(state)
    assert all(
        torch.equal(x.state["exp_avg"], y.state["exp_avg"])
        for x, y in zip(opts.groups, other.groups)
    )
    assert other.steps == 1
