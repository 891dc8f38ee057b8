"""`dlpipe rl train|evaluate|play` through the real entry point: output, exit codes, files."""

from __future__ import annotations

import json

from dlpipe.cli.app import main


def test_train_evaluate_play(tmp_path, capsys):
    code = main(
        [
            "rl",
            "train",
            "FrozenLake-v1",
            "--algo",
            "qlearning",
            "--env-option",
            "is_slippery=false",
            "--steps",
            "5000",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "selected on 100 greedy episodes (seeds 10000-10099)" in out
    assert (
        "reported on 100 fresh greedy episodes (seeds 20000-20099), never used to select: mean return 1.00"
        in out
    )
    assert "solved on the fresh episodes; the selection check passed at env step" in out
    assert (tmp_path / "run" / "bundle" / "weights.safetensors").is_file()

    assert (
        main(["rl", "evaluate", str(tmp_path / "run" / "bundle"), "--episodes", "20", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 20 and result["mean_return"] == 1.0 and "random" in result

    assert main(["rl", "evaluate", str(tmp_path / "run" / "bundle"), "--episodes", "10"]) == 0
    table = capsys.readouterr().out
    assert "agent" in table and "random" in table

    assert (
        main(
            [
                "rl",
                "play",
                str(tmp_path / "run" / "bundle"),
                "--episodes",
                "1",
                "-o",
                str(tmp_path / "p.gif"),
            ]
        )
        == 0
    )
    assert (tmp_path / "p.gif").stat().st_size > 1000


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["rl", "train", "CartPol-v1", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: unknown environment id 'CartPol-v1'")
        and "CartPole-v1" in err
        and "Traceback" not in err
    )
    assert main(["rl", "train", "Pendulum-v1", "--algo", "dqn", "--out", str(tmp_path / "b")]) == 2
    assert "continuous (Box) action space; set `--algo` to 'a2c'" in capsys.readouterr().err
    assert (
        main(
            [
                "rl",
                "train",
                "CartPole-v1",
                "--option",
                "learning_rat=0.1",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert "did you mean `learning_rate`" in capsys.readouterr().err
    assert (
        main(["rl", "train", "CartPole-v1", "--option", "oops", "--out", str(tmp_path / "c")]) == 2
    )
    assert "must look like KEY=VALUE" in capsys.readouterr().err
    assert main(["rl", "evaluate", str(tmp_path)]) == 2
    assert "is not a dlpipe bundle" in capsys.readouterr().err
    assert not any(p.name in ("a", "b", "c") for p in tmp_path.iterdir())  # nothing half-written
