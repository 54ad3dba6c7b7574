"""How much of the task suite's language `vla command` understands (sims/commands.py).

For every task and split, scenes of the evaluation stream (seeds 0..N-1):
- own: the scene's own instruction must parse to the scene's task and ground to the
  scene's own goal (same target, second referent, zone or location);
- templates: every phrasing the suite can make for that goal (every training and
  held-out template, every way an object and a location are named) must do the same;
- absent: "pick up the <colour> block" for a colour the scene lacks, and a command
  with a word outside the vocabulary, must be refused (NotInScene), not run.

    .venv/bin/python benchmarks/command_coverage.py --seeds 20
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict

from sims.commands import NotInScene, NotUnderstood, ground, parse, phrasings, same_goal
from sims.env import TabletopEnv
from sims.scene import COLORS
from sims.splits import SPLITS, check_split
from sims.tasks import TASKS


def understood(text: str, task: str, goal) -> bool:
    try:
        command = parse(text)
        return command.task == task and same_goal(ground(command, goal), goal)
    except (NotUnderstood, NotInScene):
        return False


def refused(text: str, goal) -> bool:
    try:
        ground(parse(text), goal)
    except (NotUnderstood, NotInScene):
        return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="scenes per task and split")
    args = parser.parse_args()
    start = time.perf_counter()
    own, templates, absent = Counter(), defaultdict(Counter), Counter()
    for task in TASKS:
        env = TabletopEnv(task, image_size=8, mode="eval", random_start=False)
        for split in SPLITS:
            try:
                check_split(split, task)
            except ValueError:
                continue
            for seed in range(args.seeds):
                env.reset(seed=seed, options={"split": split})
                goal = env.goal
                own["n"] += 1
                own["ok"] += understood(goal.instruction, task, goal)
                for text, held_out in phrasings(task, goal):
                    cell = templates[f"{task}/{'held-out' if held_out else 'train'}"]
                    cell["n"] += 1
                    cell["ok"] += understood(text, task, goal)
                missing = [c for c in COLORS if all(o.color != c for o in goal.objects)]
                for text in (f"pick up the {missing[0]} block", "touch the purple elephant"):
                    absent["n"] += 1
                    absent["refused"] += refused(text, goal)
        env.close()
    print(json.dumps({
        "scenes": own["n"],
        "own_instruction_understood": own["ok"] / own["n"],
        "phrasings": {k: {"n": v["n"], "understood": v["ok"] / v["n"]}
                      for k, v in sorted(templates.items())},
        "phrasings_understood": sum(v["ok"] for v in templates.values())
        / sum(v["n"] for v in templates.values()),
        "absent_refused": absent["refused"] / absent["n"], "absent_n": absent["n"],
        "seconds": round(time.perf_counter() - start, 1),
    }))


if __name__ == "__main__":
    main()
