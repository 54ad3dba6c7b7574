"""The in-sim check of a policy while it trains: success on the validation stream (L1
for the training tasks, L4 for the held-out one), logged to TensorBoard."""

from __future__ import annotations

import sys
from pathlib import Path

from vla.train.config import TrainConfig
from vla.train.data import dataset_env_ids


def check_in_sim(begin, dev, cfg: TrainConfig, writer, step: int,
                 report_dir: Path | None = None) -> dict | None:
    """Success on the validation stream of `begin.model` (a `Start`); with `report_dir`,
    the stage-by-stage report is written there (`vla eval`'s results.json, results.md,
    stages.md) and printed. None when no task has a simulator."""
    from policies.vla_policy import VLAPolicy
    from vla.eval.report import markdown_table, stage_table, write_report
    from vla.eval.run import evaluate

    env_ids = cfg.eval_tasks or dataset_env_ids(cfg.data)
    simulated = _simulated(env_ids)
    if len(simulated) < len(env_ids):  # recorded on a robot, or imported: no sim to judge
        others = sorted(set(env_ids) - set(simulated))
        print(f"in-sim check: skipped for {', '.join(others)} (no simulator env of that "
              f"name; judge this policy on its robot)", file=sys.stderr)
    if not simulated:
        return None
    model = begin.model
    policy = VLAPolicy.from_model(model, begin.tokenizer, begin.contract, begin.language, dev)
    model.eval()
    try:  # L1 for the training tasks; L4 for the held-out one (a new task to fine-tune on)
        result = evaluate(policy, simulated, ["L1", "L4"], cfg.eval_episodes, progress=False,
                          mode="val")
    finally:
        model.train()
    for key, cell in result["cells"].items():
        writer.add_scalar(f"eval/{key}", cell["success"], step)
    for split, summary in result["splits"].items():
        writer.add_scalar(f"eval/{split}_mean", summary["success"], step)
    if report_dir is not None:
        write_report(result, report_dir)
        print(markdown_table(result) + "\n" + stage_table(result), file=sys.stderr)
    return result["splits"]


def _simulated(env_ids: list[str]) -> list[str]:
    """The env ids that name a registered simulator env."""
    import gymnasium

    import sims  # noqa: F401  (registers the sims/ ids)

    return [e for e in env_ids if e in gymnasium.registry]
