import pytest

from dlpipe.core.config import RunConfig, build_config, read_config_file
from dlpipe.core.errors import DlpipeError, InvalidConfigError


def test_defaults_and_flat_keys_route_to_sections():
    cfg = build_config({"epochs": 7, "hidden": [8, 4]}, {"model": {"dropout": 0.3}, "seed": 5})
    assert isinstance(cfg, RunConfig)
    assert (
        cfg.train.epochs == 7
        and cfg.model.hidden == [8, 4]
        and cfg.model.dropout == 0.3
        and cfg.seed == 5
    )


def test_later_layers_win_and_none_means_not_given():
    cfg = build_config({"train": {"epochs": 3}}, {"epochs": None}, {"epochs": 9})
    assert cfg.train.epochs == 9


def test_unknown_key_suggests_closest():
    with pytest.raises(
        InvalidConfigError, match=r"unknown config key `epoch`.*did you mean `epochs`"
    ):
        build_config({"epoch": 3})


def test_unknown_key_in_section_lists_allowed():
    with pytest.raises(
        InvalidConfigError, match=r"`train.batchsize`.*did you mean `batch_size`.*allows:"
    ):
        build_config({"train": {"batchsize": 3}})


def test_out_of_range_value_names_the_key():
    with pytest.raises(InvalidConfigError, match=r"`model.dropout` = 1.5 is invalid"):
        build_config({"dropout": 1.5})


def test_errors_are_also_builtin_errors():
    with pytest.raises(ValueError):
        build_config({"nope": 1})
    assert issubclass(InvalidConfigError, DlpipeError)


def test_read_yaml_and_bad_yaml(tmp_path):
    good = tmp_path / "run.yaml"
    good.write_text("train:\n  epochs: 4\nhidden: [16]\n")
    assert build_config(read_config_file(good)).model.hidden == [16]
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(InvalidConfigError, match="could not be parsed"):
        read_config_file(bad)
    with pytest.raises(DlpipeError, match="does not exist"):
        read_config_file(tmp_path / "missing.yaml")
