import numpy as np
import pandas as pd
import pytest
import torch

from dlpipe.core.errors import InvalidTargetError
from dlpipe.tasks.task import Task, infer_task


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([0.5, 1.7, 2.2, 3.9, 4.1, 5.5], "regression"),
        ([0, 1, 0, 1], "binary"),
        (["yes", "no", "yes"], "binary"),
        ([True, False, True], "binary"),
        (["a", "b", "c", "a"], "multiclass"),
        ([0, 1, 2] * 20, "multiclass"),
        (list(range(100)), "regression"),
    ],
)
def test_inferred_kind(values, kind):
    assert infer_task(pd.Series(values), target="y").kind == kind


def test_single_class_is_refused():
    with pytest.raises(InvalidTargetError, match=r"single class \('a'\)"):
        infer_task(pd.Series(["a", "a", "a"]), target="y")


def test_labels_round_trip_through_codes():
    t = infer_task(pd.Series(["cat", "dog", "bird", "dog"]), target="y")
    assert t.classes == ["bird", "cat", "dog"]
    codes = t.encode(pd.Series(["dog", "bird"]))
    assert codes.tolist() == [2, 0]
    logits = np.eye(3)[codes] * 5
    labels, proba = t.decode(logits)
    assert labels.tolist() == ["dog", "bird"] and proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1)


def test_unknown_label_at_evaluation():
    t = infer_task(pd.Series([0, 1, 0]), target="y")
    with pytest.raises(InvalidTargetError, match="labels not seen in training: 7"):
        t.encode(pd.Series([0, 7]))


def test_loss_is_on_logits():
    t = Task(kind="binary", target="y", classes=[0, 1])
    logits = torch.tensor([[10.0], [-10.0]])
    y = torch.tensor([[1.0], [0.0]])
    assert (
        t.loss_fn()(logits, y).item() < 1e-3
    )  # BCE-with-logits: a sigmoid before it would be wrong


def test_regression_scaling_round_trip():
    t = Task(kind="regression", target="y")
    t.fit_target(np.array([10.0, 20.0, 30.0]))
    enc = t.encode(pd.Series([10.0, 30.0]))
    values, proba = t.decode(enc)
    assert proba is None and values.tolist() == pytest.approx([10.0, 30.0])


def test_task_dict_round_trip():
    t = infer_task(pd.Series(["x", "y"]), target="t")
    assert Task.from_dict(t.to_dict()) == t


def test_roc_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    from dlpipe.tasks.task import _roc_auc

    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=60), 1).astype(np.float32)  # rounded: many tied scores
    y = (rng.random(60) < 0.4).astype(np.float32)
    got = _roc_auc(torch.from_numpy(scores)[:, None], torch.from_numpy(y)[:, None])
    assert float(got) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert torch.isnan(_roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([1.0, 1.0])))


def test_batch_metrics_give_roc_auc_only_when_asked():
    t = Task(kind="binary", target="y", classes=[0, 1])
    logits, y = torch.tensor([[2.0], [-1.0], [0.5]]), torch.tensor([[1.0], [0.0], [0.0]])
    assert set(t.batch_metrics()(logits, y)) == {"accuracy"}
    out = t.batch_metrics(roc_auc=True)(logits, y)
    assert set(out) == {"accuracy", "roc_auc"} and float(out["roc_auc"]) == pytest.approx(1.0)
