"""How well does a trained policy adapt, and what does it forget? One JSON object.

    python benchmarks/finetune_efficiency.py [--checkpoint DIR] [--demos 10,50]
        [--scenarios new_task,new_robot,so101]
        [--methods scratch,full,frozen-encoders,lora] [--steps 600] [--episodes 50]
        [--out runs/finetune_efficiency] [--device auto] [--quick]

Two adaptations of the base policy (default: the shipped default policy):
- new task:  the held-out task sims/PushNext-v0, evaluated on its split L4;
- new robot: sims/Pick-Kuka-v0 (another action contract), evaluated on L1;
- so101 (on request): the SO-101 twin's sims/Pick-SO101-v0, evaluated on L1.
For each, with N demonstrations (N in --demos) and each method: `scratch` (a new model of
the base's size trained on the N demos alone), `full`, `frozen-encoders` and `lora`
(`vla finetune`), all with the same number of steps. Success uses `vla eval`'s protocol
(--episodes per cell, 95% Wilson intervals). Forgetting is the base's L1 success on its
own tasks minus the fine-tuned policy's (for a new robot, the fine-tuned weights are
run with the base's tokenizer, contract and state statistics); for LoRA it is measured
with the adapter on (new task) and off, and off must equal the base exactly: asserted.
The target (issue 5): with the most demos, a fine-tune reaches at least twice the success
of training from scratch.

--quick is a smoke test (about a minute on a laptop CPU): a tiny base trained on 2 pick
demos, 2 demos per adaptation, a few steps, 1 evaluation episode. The full run trains 16
models and evaluates about 2,000 episodes per demo count: hours on a CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SCENARIOS = {
    "new_task": {"env_id": "sims/PushNext-v0", "split": "L4"},
    "new_robot": {"env_id": "sims/Pick-Kuka-v0", "split": "L1"},
    # The SO-101 twin: another contract, another board, 2 cm blocks (docs/so101.md).
    "so101": {"env_id": "sims/Pick-SO101-v0", "split": "L1"},
}
METHODS = ("scratch", "full", "frozen-encoders", "lora")
ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="base checkpoint (default: the shipped default)")
    parser.add_argument("--demos", default="10,50", help="demonstration counts")
    parser.add_argument("--scenarios", default="new_task,new_robot",
                        help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", type=int, default=600, help="training steps per model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per "
                                                                 "cell (new task/robot)")
    parser.add_argument("--forgetting-episodes", type=int, default=None,
                        help="L1 episodes per original task (default: --episodes)")
    parser.add_argument("--l1-tasks", nargs="+", help="the base's original tasks (default: "
                        "every Panda task but the held-out one)")
    parser.add_argument("--scratch-config", default=str(ROOT / "configs" / "default.yaml"),
                        help="recipe whose model size `scratch` uses (its data and steps "
                             "are replaced)")
    parser.add_argument("--out", help="work directory: datasets, runs, results (default "
                                      "runs/finetune_efficiency; a temporary one with --quick)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="collection processes")
    parser.add_argument("--quick", action="store_true", help="tiny smoke test (~1 minute)")
    args = parser.parse_args()
    if args.quick:
        args.demos, args.steps, args.batch_size, args.episodes = "2", 4, 8, 1
        args.forgetting_episodes, args.workers = 1, 1
        args.scratch_config = str(ROOT / "configs" / "tiny.yaml")
    args.demos = [int(n) for n in args.demos.split(",")]
    args.methods = [m for m in args.methods.split(",") if m]
    args.scenarios = [m for m in args.scenarios.split(",") if m]
    wrong = sorted(set(args.scenarios) - set(SCENARIOS))
    if wrong:
        parser.error(f"--scenarios has {wrong}; expected some of {list(SCENARIOS)}")
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods has {unknown}; expected some of {list(METHODS)}")
    args.forgetting_episodes = args.forgetting_episodes or args.episodes
    return args


# -- data and models ------------------------------------------------------------------------
def dataset(root: Path, env_id: str, split: str, n: int, workers: int) -> str:
    from vla.data.collect import collect

    out = root / "data" / f"{env_id.split('/')[-1]}-{split}-{n}"
    if not (out / "meta.json").is_file():
        collect(env_id, n, str(out), workers=workers, split=split, progress=False)
    return str(out)


# "Scratch" means no pretrained weights and no grounding co-training, whatever the
# scratch config's recipe starts from.
SCRATCH = ("init_from=''", "grounding_data=''")


def quick_base(root: Path, args) -> Path:
    """--quick: a tiny base policy trained on 2 pick demos (no default policy needed)."""
    from vla.config import load_config
    from vla.train.config import TrainConfig
    from vla.train.loop import train

    data = dataset(root, "sims/Pick-v0", "L1", 2, 1)
    cfg = load_config(TrainConfig, args.scratch_config, [f"data=[{data!r}]", "steps=10",
                                                         "eval_episodes=0", *SCRATCH])
    run = root / "runs" / "base"
    if not (run / "checkpoint" / "config.json").is_file():
        train(cfg, str(run), progress=False, device=args.device)
    return run / "checkpoint"


def train_one(method: str, base: Path, data: str, run: Path, args) -> dict:
    """Train one model (or adapter); returns the training summary. A finished run in the
    work directory is reused and an interrupted one resumed, so a long benchmark can be
    started again where it stopped."""
    if (run / "summary.json").is_file():
        return json.loads((run / "summary.json").read_text())
    resume = (run / "checkpoint" / "train_state.json").is_file()
    from vla.config import load_config
    from vla.train.config import TrainConfig
    from vla.train.finetune import FinetuneConfig, finetune
    from vla.train.loop import train

    common = [f"data=[{data!r}]", f"steps={args.steps}", f"batch_size={args.batch_size}",
              "eval_episodes=0", f"threads={args.threads}", "num_workers=0"]
    if method == "scratch":
        cfg = load_config(TrainConfig, args.scratch_config,
                          [*common, f"warmup_steps={max(1, args.steps // 10)}", *SCRATCH])
        return train(cfg, str(run), resume=resume, progress=False, device=args.device)
    cfg = load_config(FinetuneConfig, None, [*common, f"checkpoint={str(base)!r}",
                                             f"method={method}",
                                             f"warmup_steps={max(1, args.steps // 20)}"])
    return finetune(cfg, str(run), resume=resume, progress=False, device=args.device)


def on_base_contract(run: Path, base: Path):
    """Fine-tuned weights with the base's tokenizer, contract and state statistics: how a
    model fine-tuned for another robot still does the base's tasks."""
    from policies.checkpoint import load_model
    from policies.language import LanguageEncoder
    from policies.vla_policy import VLAPolicy

    model, _ = load_model(run / "checkpoint")
    base_model, info = load_model(base)
    model.state_mean, model.state_std = base_model.state_mean, base_model.state_std
    language = LanguageEncoder(model.cfg.language_model, model.cfg.language_max_tokens)
    return VLAPolicy.from_model(model.eval(), info["tokenizer"], info["contract"], language,
                                "cpu")


# -- one cell -------------------------------------------------------------------------------
def measure(method, scenario, n, base, base_l1, root, args) -> dict:
    from policies.adapted_policy import AdaptedPolicy
    from policies.vla_policy import VLAPolicy
    from vla.eval.run import evaluate

    spec = SCENARIOS[scenario]
    data = dataset(root, spec["env_id"], spec["split"], n, args.workers)
    run = root / "runs" / f"{scenario}-{n}-{method}"
    summary = train_one(method, base, data, run, args)
    row = {"scenario": scenario, "env_id": spec["env_id"], "split": spec["split"],
           "demos": n, "method": method, "train_seconds": summary["seconds"],
           "trainable_parameters": summary["trainable_parameters"],
           "rebuilt": summary.get("rebuilt", [])}
    if method == "lora":
        host = AdaptedPolicy(base, [run], device="cpu")
        policy = host.for_adapter(run.name)
    else:
        policy = VLAPolicy.from_pretrained(run / "checkpoint", device="cpu")
    row["success"] = evaluate(policy, [spec["env_id"]], [spec["split"]], args.episodes,
                              progress=False)["splits"][spec["split"]]
    if method == "scratch":
        return row  # nothing to forget: it never knew the base's tasks

    def l1(p) -> dict:
        return evaluate(p, args.l1_tasks, ["L1"], args.forgetting_episodes, progress=False)

    if method == "lora":
        off = l1(host.for_adapter(None))
        assert off["cells"] == base_l1["cells"], (
            f"{run}: with the adapter off, L1 must equal the base exactly: "
            f"{off['cells']} != {base_l1['cells']}")
        row["L1_adapter_off"] = off["splits"]["L1"]
        after = l1(policy) if scenario == "new_task" else off
    else:
        after = l1(policy if scenario == "new_task" else on_base_contract(run, base))
    row["L1_after"] = after["splits"]["L1"]
    row["forgetting"] = base_l1["splits"]["L1"]["success"] - after["splits"]["L1"]["success"]
    return row


def targets(rows: list[dict], demos: int) -> dict:
    """Per scenario at `demos`: best fine-tune vs scratch (target: at least twice)."""
    out = {}
    for scenario in {r["scenario"] for r in rows}:
        cells = {r["method"]: r["success"]["success"] for r in rows
                 if r["scenario"] == scenario and r["demos"] == demos}
        tuned = {m: s for m, s in cells.items() if m != "scratch"}
        if "scratch" not in cells or not tuned:
            continue
        best = max(tuned, key=tuned.get)
        scratch = cells["scratch"]
        out[scenario] = {"demos": demos, "scratch": scratch, "best_method": best,
                         "best": tuned[best],
                         "ratio": tuned[best] / scratch if scratch else None,
                         "met": tuned[best] > 0 and tuned[best] >= 2 * scratch}
    return out


def plot(rows: list[dict], path: Path) -> None:
    """Bars of success with 95% intervals, one group per scenario and demo count."""
    import cv2

    width, height, bar = 60 + 30 * len(rows) + 20 * len({(r["scenario"], r["demos"])
                                                         for r in rows}), 320, 22
    img = np.full((height, max(width, 400), 3), 255, np.uint8)
    y = lambda v: int(height - 60 - v * (height - 90))  # noqa: E731
    colors = {"scratch": (150, 150, 150), "full": (180, 120, 40),
              "frozen-encoders": (60, 160, 60), "lora": (40, 90, 200)}
    x, group = 50, None
    for r in rows:
        if (r["scenario"], r["demos"]) != group:
            group = (r["scenario"], r["demos"])
            x += 20
            cv2.putText(img, f"{r['scenario']} {r['demos']}", (x, height - 20),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
        s = r["success"]
        cv2.rectangle(img, (x, y(s["success"])), (x + bar, y(0)), colors[r["method"]], -1)
        cv2.line(img, (x + bar // 2, y(s["ci95"][0])), (x + bar // 2, y(s["ci95"][1])),
                 (0, 0, 0), 1)
        x += 30
    for i, (method, color) in enumerate(colors.items()):
        cv2.rectangle(img, (10 + 110 * i, 8), (22 + 110 * i, 20), color, -1)
        cv2.putText(img, method, (26 + 110 * i, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    import sims
    from policies.registry import resolve_checkpoint
    from policies.vla_policy import VLAPolicy
    from sims.splits import HELD_OUT_TASK
    from vla.envs import resolve_env_id
    from vla.eval.run import evaluate

    root = Path(args.out or (tempfile.mkdtemp(prefix="finetune_quick-") if args.quick
                             else "runs/finetune_efficiency"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base = quick_base(root, args) if args.quick else resolve_checkpoint(args.checkpoint)
    if args.l1_tasks:
        args.l1_tasks = [resolve_env_id(t) for t in args.l1_tasks]
    elif args.quick:
        args.l1_tasks = ["sims/Pick-v0"]  # what the quick base was trained on
    else:
        args.l1_tasks = [e for e in sims.ENV_IDS if sims.env_task(e)[1] == "panda"
                         and sims.env_task(e)[0] != HELD_OUT_TASK]
    base_l1 = evaluate(VLAPolicy.from_pretrained(base, device="cpu"), args.l1_tasks, ["L1"],
                       args.forgetting_episodes, progress=False)
    rows = [measure(method, scenario, n, base, base_l1, root, args)
            for scenario in args.scenarios for n in args.demos for method in args.methods]
    result = {
        "mode": "quick" if args.quick else "full", "base": str(base),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "quick")},
        "base_L1": base_l1["splits"]["L1"],
        "base_L1_tasks": {k: v["success"] for k, v in base_l1["tasks"].items()},
        "runs": rows, "target_2x_scratch": targets(rows, max(args.demos)),
        "seconds": time.perf_counter() - t0, "out": str(root),
    }
    (root / "finetune_efficiency.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(rows, root / "finetune_efficiency.png")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
