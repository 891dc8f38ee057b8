import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.core.errors import InvalidConfigError, RunFailedError
from dlpipe.training import (
    CosineSchedule,
    EarlyStopping,
    OneCycleSchedule,
    ReduceLROnPlateau,
    TensorData,
    Trainer,
    find_learning_rate,
)


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, :2].sum(1, keepdim=True) > 0).float()
    return TensorData((x,), y)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))


def test_loss_goes_down_and_history_has_val_keys():
    data = _data()
    h = Trainer(epochs=30, batch_size=16, learning_rate=0.01, device="cpu").fit(
        _model(), F.binary_cross_entropy_with_logits, data, data
    )
    assert h.records[-1]["loss"] < h.records[0]["loss"] * 0.7
    assert {"epoch", "loss", "val_loss", "lr", "time"} <= set(h.records[0])


def test_same_seed_same_weights():
    data = _data()
    outs = []
    for _ in range(2):
        m = _model()
        Trainer(epochs=3, batch_size=8, seed=4, device="cpu").fit(
            m, F.binary_cross_entropy_with_logits, data
        )
        outs.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_early_stopping_restores_best_weights():
    data = _data()
    stopper = EarlyStopping(patience=2)
    # a huge learning rate makes validation loss get worse after the first epochs
    m = _model()
    t = Trainer(
        epochs=50,
        batch_size=8,
        learning_rate=0.5,
        optimizer="sgd",
        momentum=0.0,
        callbacks=[stopper],
        device="cpu",
    )
    h = t.fit(m, F.binary_cross_entropy_with_logits, data, data)
    assert h.stopped_epoch is not None and len(h) < 50
    best = min(r["val_loss"] for r in h.records)
    with torch.no_grad():
        now = F.binary_cross_entropy_with_logits(m(data.inputs[0]), data.y).item()
    assert now == pytest.approx(best, rel=1e-4)


def test_reduce_lr_on_plateau_lowers_lr():
    data = _data()
    t = Trainer(
        epochs=12,
        batch_size=64,
        learning_rate=1e-3,
        callbacks=[ReduceLROnPlateau(patience=1, min_delta=1.0)],
        device="cpu",
    )
    h = t.fit(_model(), F.binary_cross_entropy_with_logits, data, data)
    assert (
        h.records[-1]["lr"] < 1e-4
    )  # every epoch "fails" to improve by 1.0, so the rate halves repeatedly


@pytest.mark.parametrize("schedule", [CosineSchedule(), OneCycleSchedule()])
def test_step_schedules_end_low(schedule):
    data = _data()
    t = Trainer(epochs=5, batch_size=8, learning_rate=0.01, callbacks=[schedule], device="cpu")
    h = t.fit(_model(), F.binary_cross_entropy_with_logits, data)
    assert h.records[-1]["lr"] < 0.01 * 0.05


def test_nan_loss_stops_with_a_sentence():
    data = _data()
    bad = TensorData((data.inputs[0] * math.inf,), data.y)
    with pytest.raises(RunFailedError, match="became nan at epoch 1; lower `learning_rate`"):
        Trainer(epochs=2, device="cpu").fit(_model(), F.binary_cross_entropy_with_logits, bad)


def test_bad_constructor_arguments_are_collected():
    with pytest.raises(InvalidConfigError, match=r"`epochs` is 0.*`batch_size` is -1"):
        Trainer(epochs=0, batch_size=-1)


def test_monitor_that_does_not_exist():
    data = _data()
    with pytest.raises(InvalidConfigError, match="`monitor` is 'val_auc'"):
        Trainer(epochs=2, callbacks=[EarlyStopping("val_auc")], device="cpu").fit(
            _model(), F.binary_cross_entropy_with_logits, data, data
        )


def test_lr_finder_picks_a_sane_rate_and_leaves_model_alone():
    data = _data(256)
    m = _model()
    before = [p.detach().clone() for p in m.parameters()]
    res = find_learning_rate(
        Trainer(batch_size=16, device="cpu"), m, F.binary_cross_entropy_with_logits, data
    )
    assert 1e-5 < res.learning_rate < 1.0 and len(res.lrs) == len(res.losses) > 10
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_single_thread_for_tiny_models_and_restored_after():
    before = torch.get_num_threads()
    seen = []

    class Spy(EarlyStopping):
        def on_epoch_end(self, trainer, epoch, logs):
            seen.append(torch.get_num_threads())

    data = _data()
    Trainer(epochs=1, device="cpu", callbacks=[Spy()]).fit(
        _model(), F.binary_cross_entropy_with_logits, data, data
    )
    assert seen == [1] and torch.get_num_threads() == before


def test_threads_follow_the_work_of_a_step_not_the_parameter_count(monkeypatch):
    from dlpipe.models.cnn import seed_cnn_spec
    from dlpipe.models.registry import build_model
    from dlpipe.training import trainer as trainer_module

    monkeypatch.setattr(
        trainer_module, "free_cores", lambda: 256
    )  # not the load of the machine running the tests
    trainer = Trainer(batch_size=64, device="cpu")
    cnn = build_model(seed_cnn_spec())  # 35k parameters, but ~0.9 GFLOP per step of 64 images
    images = TensorData((torch.zeros(64, 1, 28, 28),), torch.zeros(64, dtype=torch.long))
    assert trainer._pick_threads(cnn, images) is None  # torch's default: all cores
    tiny = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    small = TensorData((torch.zeros(64, 1, 4, 4),), torch.zeros(64, dtype=torch.long))
    assert trainer._pick_threads(tiny, small) == 1
    assert Trainer(batch_size=64, device="cpu", threads=3)._pick_threads(cnn, images) == 3
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:  # 2 cores free of other jobs: two threads, not torch's 4
        monkeypatch.setattr(trainer_module, "free_cores", lambda: 2)
        assert trainer._pick_threads(cnn, images) == 2
        assert trainer._pick_threads(tiny, small) == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.setattr(trainer_module, "free_cores", lambda: 1)
    assert (
        trainer._pick_threads(cnn, images) == 1
    )  # a busy machine: a second thread would spin-wait
