"""`vla train` and `vla eval` through the CLI: resume, DDP on CPU, evaluation outputs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from vla.cli import main

TINY = "configs/tiny.yaml"


def _weights(run: Path) -> dict:
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def test_train_writes_a_checkpoint_logs_and_summary(tiny_datasets, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--config", TINY, "--data", *tiny_datasets, "--out", str(run),
                 "steps=4", "eval_episodes=0"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 4 and summary["frames"] > 20
    assert (run / "checkpoint" / "model.safetensors").is_file()
    assert (run / "checkpoint" / "train_state.json").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    contract = json.loads((run / "checkpoint" / "action_contract.json").read_text())
    assert contract["chunk_length"] == 2 and contract["robot"] == "panda"
    assert len(contract["normalization"]["state_mean"]) == 6
    with pytest.raises(FileExistsError, match="--resume"):
        from vla.config import load_config
        from vla.train.config import TrainConfig
        from vla.train.loop import train

        train(load_config(TrainConfig, TINY, [f"data=[{tiny_datasets[0]!r}]"]), str(run))


def test_resume_continues_exactly(tiny_datasets, tmp_path):
    from vla.config import load_config
    from vla.train.config import TrainConfig
    from vla.train.loop import train

    overrides = [f"data=[{tiny_datasets[0]!r}]", "steps=6", "checkpoint_every=3",
                 "eval_episodes=0", "model.dropout=0.1"]
    cfg = load_config(TrainConfig, TINY, overrides)
    train(cfg, str(tmp_path / "straight"), progress=False)
    train(cfg, str(tmp_path / "sliced"), progress=False, stop_after=3)
    assert json.loads((tmp_path / "sliced" / "checkpoint" / "train_state.json").read_text())[
        "step"] == 3
    train(cfg, str(tmp_path / "sliced"), resume=True, progress=False)
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "sliced")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key


def test_config_errors_name_the_field(tiny_datasets, tmp_path, capsys):
    code = main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out",
                 str(tmp_path / "r"), "stepz=3"])
    assert code == 2
    assert "unknown config key 'stepz'; did you mean 'steps'?" in capsys.readouterr().err
    code = main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out",
                 str(tmp_path / "r"), "model.decoder=beam"])
    assert code == 2
    assert "model.decoder='beam'" in capsys.readouterr().err


def test_two_processes_train_one_model_with_ddp_on_cpu(tiny_datasets, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(port),
           "-m", "vla.cli", "train", "--config", TINY, "--data", *tiny_datasets,
           "--out", str(run), "steps=3", "eval_episodes=0", "--device", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["replicas_identical"] is True


def test_eval_reports_success_with_intervals_and_is_reproducible(tiny_datasets, tmp_path,
                                                                 capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out", str(run),
                 "steps=2", "eval_episodes=0"]) == 0
    capsys.readouterr()
    args = ["eval", "--checkpoint", str(run), "--tasks", "pick", "--splits", "L1,L3",
            "--episodes", "2", "--json"]
    assert main([*args, "--out", str(tmp_path / "eval")]) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(first["splits"]) == {"L1", "L3"}
    cell = first["cells"]["sims/Pick-v0/L1"]
    assert 0.0 <= cell["success"] <= 1.0 and cell["episodes"] == 2
    assert cell["ci95"][0] <= cell["success"] <= cell["ci95"][1]
    for name in ("results.json", "results.md", "success.png"):
        assert (tmp_path / "eval" / name).is_file()
    assert list((tmp_path / "eval" / "videos").rglob("*.mp4"))
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["cells"] == second["cells"]


def test_eval_refuses_a_policy_for_another_robot(tiny_datasets, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out", str(run),
                 "steps=1", "eval_episodes=0"]) == 0
    code = main(["eval", "--checkpoint", str(run), "--tasks", "sims/Pick-Kuka-v0",
                 "--splits", "L1", "--episodes", "1"])
    assert code == 2
    assert "robot: policy has 'panda', robot has 'kuka'" in capsys.readouterr().err


def test_final_check_reports_stages_on_the_validation_stream(tiny_datasets, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out", str(run),
                 "steps=1", "eval_episodes=1", "eval_tasks=['sims/Pick-v0']"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["eval"]["L1"]["episodes"] == 1
    result = json.loads((run / "eval" / "results.json").read_text())
    assert result["mode"] == "val"
    cell = result["cells"]["sims/Pick-v0/L1"]
    assert cell["stage_order"] == ["reach", "grasp", "lift", "success"]
    assert (run / "eval" / "stages.md").is_file()
    from vla.recipe import describe

    recipe = describe(run, None)  # what `make default-policy` ships beside the weights
    assert recipe["device"] == "cpu" and recipe["train"]["steps"] == 1
    assert recipe["train"]["config"]["eval_episodes"] == 1
    from vla import recipe as recipe_cli

    capsys.readouterr()  # a polishing fine-tune's run has the same records as a train run
    assert recipe_cli.main([str(run), "--polish", str(run), "--polish", str(run)]) == 0
    assert [p["steps"] for p in json.loads(capsys.readouterr().out)["polish"]] == [1, 1]
    assert recipe_cli.main([str(run), "--polish"]) == 2
    dagger_run = tmp_path / "dagger"  # a DAgger round after the polishing: its own record
    dagger_run.mkdir()
    (dagger_run / "dagger.json").write_text(json.dumps(
        {"config": {"beta": 0.3}, "rounds": [{"beta": 0.3}], "final_checkpoint": "x"}))
    assert recipe_cli.main([str(run), "--final-dagger", str(dagger_run)]) == 0
    assert json.loads(capsys.readouterr().out)["final_dagger"]["rounds"] == [{"beta": 0.3}]
    assert recipe_cli.main([str(run), "--final-dagger", str(dagger_run), "--after",
                            str(run)]) == 0  # a fine-tune after that round
    assert [r["steps"] for r in json.loads(capsys.readouterr().out)["after_final_dagger"]] \
        == [1]


def test_training_into_a_log_file_prints_step_lines(tiny_datasets, tmp_path, capsys):
    """With stderr not a terminal (a log file), no bar: a plain line every log_every steps
    and at the last, so a run sent to a file is never silent."""
    code = main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out",
                 str(tmp_path / "run"), "steps=3", "log_every=2", "eval_episodes=0"])
    assert code == 0
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("train: step")]
    assert [line.split()[2] for line in lines] == ["2/3", "3/3"]
    assert all(" loss " in line and "samples/s" in line for line in lines)
