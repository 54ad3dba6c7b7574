"""`dagger()`: rounds of policy rollouts relabelled by the expert, then more training.

    OUT/dagger.json          what each round did: beta, rollout success, frames, the
                             round's validation success; written atomically after each step
    OUT/round_<r>/data/      the round's relabelled rollouts (a dataset like `vla collect`'s;
                             episode attrs: relabelled, dagger_round, dagger_beta, success)
    OUT/round_<r>/run/       training on demonstrations + every round's rollouts so far,
                             starting from the previous round's weights (`vla finetune`'s
                             loop, method full by default)

Round r rolls out the policy of round r - 1 (round 1: `checkpoint`) on every training
task, with beta_r = beta * beta_decay ** (r - 1) of its chunks handed to the expert
(Ross et al. 2011, "A reduction of imitation learning ... to no-regret online
learning"). Rollouts use the training stream with seeds far above any demonstration's
(`ROLLOUT_SEED`), so they never repeat a demonstration's scene, and never touch the
evaluation or validation streams.

Crash safety and `resume` come from the pieces: rollouts are collected with
`vla collect`'s atomic commits and seed plan, and training is `vla train`'s loop with
its exact resume; a finished round is recognised by its run's summary.json.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vla.train.finetune import FinetuneConfig

ROLLOUT_SEED = 1_000_000  # round r's rollouts use seeds r * ROLLOUT_SEED + k


@dataclass
class DaggerConfig(FinetuneConfig):
    """`FinetuneConfig` (the training of each round) plus the rollouts'. `data` holds the
    demonstrations; each round's rollouts are added to it."""

    method: str = "full"
    rounds: int = 2  # DAgger rounds: roll out, relabel, train
    episodes: int = 100  # rollouts per task per round
    beta: float = 0.3  # share of chunks the expert drives in round 1
    beta_decay: float = 0.5  # beta of round r = beta * beta_decay ** (r - 1)
    tasks: list[str] = field(default_factory=list)  # env ids; default: the data's env ids
    workers: int = 2  # rollout worker processes (one torch thread each)
    executor: str = "local"  # where rollouts run: local processes, or ray (a Ray cluster)
    address: str = ""  # with executor ray: the cluster's address; "" = a local cluster
    execute_steps: int = 0  # actions of each chunk run before re-asking; 0 = all

    def validate(self) -> None:
        super().validate()
        if self.rounds < 1 or self.episodes < 1 or self.workers < 1:
            raise ValueError(f"rounds={self.rounds}, episodes={self.episodes}, workers="
                             f"{self.workers}; expected each at least 1")
        if not (0.0 <= self.beta <= 1.0 and 0.0 <= self.beta_decay <= 1.0):
            raise ValueError(f"beta={self.beta}, beta_decay={self.beta_decay}; expected "
                             f"both in [0, 1]")
        if self.execute_steps < 0:
            raise ValueError(f"execute_steps={self.execute_steps}; expected >= 0")
        if self.executor not in ("local", "ray"):
            raise ValueError(f"executor={self.executor!r}; expected 'local' or 'ray'")


def dagger(cfg: DaggerConfig, out: str, resume: bool = False, progress: bool | None = None,
           device: str = "auto") -> dict:
    """Run `cfg.rounds` DAgger rounds into `out`; returns the record (dagger.json)."""
    from policies.registry import resolve_checkpoint
    from vla.data.collect import collect
    from vla.data.store import DatasetDir, write_json_atomic
    from vla.data.worker import Driver
    from vla.train.data import dataset_env_ids
    from vla.train.finetune import finetune

    root = Path(out)
    record_path = root / "dagger.json"
    if record_path.exists() and not resume:
        raise FileExistsError(f"{out!r} already holds a DAgger run; pass --resume to "
                              f"continue it or choose another --out")
    if not cfg.data:
        raise ValueError("no demonstrations: pass --data DIR (directories from `vla collect`)")
    root.mkdir(parents=True, exist_ok=True)
    record = (json.loads(record_path.read_text()) if record_path.exists()
              else {"config": dataclasses.asdict(cfg), "rounds": []})
    env_ids = cfg.tasks or dataset_env_ids(cfg.data)
    image_size, cameras = _frame_layout(cfg.data[0])
    current = resolve_checkpoint(cfg.checkpoint or None)
    _check_views(current, cfg.data[0], cameras)
    data = list(cfg.data)
    for r in range(1, cfg.rounds + 1):
        rdir = root / f"round_{r}"
        beta = cfg.beta * cfg.beta_decay ** (r - 1)
        driver = Driver(str(current), beta, r, cfg.execute_steps or None)
        _say(f"dagger round {r}/{cfg.rounds}: rolling out {current} (beta {beta:.2f}) on "
             f"{len(env_ids)} tasks x {cfg.episodes} episodes")
        for env_id in env_ids:
            collect(env_id, cfg.episodes, str(rdir / "data"), workers=cfg.workers,
                    resume=True, noise=0.0, seed=r * ROLLOUT_SEED, image_size=image_size,
                    progress=progress, driver=driver, cameras=tuple(cameras),
                    executor=cfg.executor, address=cfg.address or None)
        data.append(str(rdir / "data"))
        rollouts = _rollout_success(DatasetDir.open(rdir / "data"))
        run = rdir / "run"
        summary_path = run / "summary.json"
        if summary_path.exists():
            summary = json.loads(summary_path.read_text())
        else:
            _say(f"dagger round {r}/{cfg.rounds}: training {cfg.steps} steps on "
                 f"{len(data)} datasets from {current}")
            train_cfg = _finetune_config(cfg, data, str(current))
            summary = finetune(train_cfg, str(run),
                               resume=(run / "checkpoint" / "train_state.json").exists(),
                               progress=progress, device=device)
        current = run / "checkpoint"
        entry = {"round": r, "beta": beta, "policy": driver.checkpoint,
                 "rollouts": rollouts, "checkpoint": str(current),
                 "validation": summary.get("eval"), "train_seconds": summary.get("seconds")}
        record["rounds"] = [e for e in record["rounds"] if e["round"] != r] + [entry]
        write_json_atomic(record_path, record)
    record["final_checkpoint"] = str(current)
    write_json_atomic(record_path, record)
    return record


def _finetune_config(cfg: DaggerConfig, data: list[str], checkpoint: str) -> FinetuneConfig:
    names = {f.name for f in dataclasses.fields(FinetuneConfig)}
    values = {k: v for k, v in dataclasses.asdict(cfg).items() if k in names}
    return FinetuneConfig(**{**values, "data": list(data), "checkpoint": checkpoint})


def _rollout_success(ds) -> dict:
    """Per env id: rollouts, the share that succeeded, and frames (from episode attrs)."""
    import h5py

    from vla.data.episode_file import read_attrs

    per_env: dict[str, dict] = {}
    for path in ds.episode_paths():
        with h5py.File(path, "r") as f:
            attrs = read_attrs(f)
        cell = per_env.setdefault(attrs["env_id"], {"episodes": 0, "successes": 0,
                                                    "frames": 0})
        cell["episodes"] += 1
        cell["successes"] += int(bool(attrs["success"]))
        cell["frames"] += int(attrs["n_frames"])
    for cell in per_env.values():
        cell["success"] = cell["successes"] / cell["episodes"]
    return per_env


def _frame_layout(dataset: str) -> tuple[int, dict]:
    """(image size, cameras {name: [h, w]}) of the demonstrations: rollouts record the
    same views."""
    from vla.data.store import DatasetDir

    cameras = DatasetDir.open(dataset).read_meta()["cameras"]
    h, w = next(iter(cameras.values()))
    if h != w:
        raise ValueError(f"dataset {dataset!r} has {h}x{w} frames; rollouts render square "
                         f"frames (collect the demonstrations with --image-size N)")
    return int(h), cameras


def _check_views(checkpoint, dataset: str, cameras: dict) -> None:
    """Rollouts record the demonstrations' views, and the policy must read exactly those."""
    from policies.registry import checkpoint_cameras

    theirs = {k: list(v) for k, v in checkpoint_cameras(str(checkpoint)).items()}
    ours = {k: list(v) for k, v in cameras.items()}
    if theirs != ours:
        raise ValueError(f"checkpoint {str(checkpoint)!r} reads cameras {theirs}, but the "
                         f"demonstrations in {dataset!r} have {ours}; roll out a policy "
                         f"trained on these demonstrations' views")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
