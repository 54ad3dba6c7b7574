"""How well several steps in one sentence are understood (sims/plans.py); one JSON object.

    python benchmarks/compound_commands.py [--plans 300] [--show-failures]

Plans of 2 and 3 steps are drawn (seeded) from the everyday phrasings of
benchmarks/everyday_commands.py (its `held` half only: never looked at while the rules
were written), each step a different task, joined by one of the joiners a person uses
(", then", "and then", ". After that,", ";", ", and", "and"). When a step acts on the
block of the step before, it says "it" ("pick up the red block, then put it in the green
zone"). A plan counts as understood when `parse_plan` returns exactly the intended steps,
in order, with the intended things. Then each plan again with one step swapped for a
sentence that is no task ("fly to the moon"): it must be refused, naming that step (by
its number, or by its words when it sits in one clause with another, joined by "and").
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np

JOINERS = (", then ", " and then ", ". After that, ", "; ", ", and ", " and ")
FOLLOWS_THE_BLOCK = ("place", "stack", "push_to", "push_next", "touch")  # may say "it"


def _everyday():
    path = Path(__file__).with_name("everyday_commands.py")
    spec = importlib.util.spec_from_file_location("everyday_commands", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def draw(rng: np.random.Generator, everyday, steps: int) -> tuple[str, list[str], str]:
    """(sentence, the intended steps' summaries, the joiner) of one plan."""
    tasks = list(everyday.PHRASINGS)
    chosen = [tasks[i] for i in rng.choice(len(tasks), size=steps, replace=False)]
    fill = everyday.FILLS[int(rng.integers(len(everyday.FILLS)))]
    joiner = JOINERS[int(rng.integers(len(JOINERS)))]
    clauses, wanted = [], []
    for n, task in enumerate(chosen):
        held = everyday.PHRASINGS[task][1::2]  # the held half
        phrasing = held[int(rng.integers(len(held)))]
        text = phrasing.format(**fill)
        if n and task in FOLLOWS_THE_BLOCK and "{obj}" in phrasing and rng.random() < 0.5:
            text = phrasing.replace("the {obj}", "it").replace("that {obj}", "it")
            text = text.replace("{obj}", "it").format(**fill)
        clauses.append(text)
        wanted.append(f"{task}: {everyday.expected(task, fill)}")
    return joiner.join(clauses), wanted, joiner


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plans", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show-failures", action="store_true")
    args = ap.parse_args(argv)
    from sims.commands import NotUnderstood
    from sims.plans import parse_plan

    everyday, rng = _everyday(), np.random.default_rng(args.seed)
    counts: dict = {}
    failures, refusals = [], {"refused": 0, "named_the_step": 0, "plans": 0}
    for i in range(args.plans):
        steps = 2 + i % 2
        sentence, wanted, joiner = draw(rng, everyday, steps)
        try:
            got = [f"{c.task}: {c.summary()}" for c in parse_plan(sentence)]
        except NotUnderstood as err:
            got = [f"refused: {err}"]
        ok = got == wanted
        for key in (f"{steps} steps", f"joiner {joiner.strip()!r}"):
            cell = counts.setdefault(key, [0, 0])
            cell[0] += ok
            cell[1] += 1
        if not ok:
            failures.append({"text": sentence, "want": wanted, "got": got})
        # The same plan with one step that is no task: refused, naming that step.
        bad = int(rng.integers(steps))
        parts = sentence.split(joiner)
        if len(parts) == steps:
            non_tasks = [t for t in everyday.NON_TASKS if t]
            parts[bad] = non_tasks[int(rng.integers(len(non_tasks)))]
            refusals["plans"] += 1
            try:
                parse_plan(joiner.join(parts))
            except NotUnderstood as err:
                refusals["refused"] += 1
                # Named: by its number ("step 2, ...") or, inside one clause joined by
                # "and", by its words.
                refusals["named_the_step"] += (f"step {bad + 1}," in str(err)
                                               or f"'{parts[bad]}'" in str(err))
    understood = sum(c[0] for k, c in counts.items() if k.endswith("steps"))
    result = {
        "benchmark": "compound_commands", "plans": args.plans, "seed": args.seed,
        "understood": understood / args.plans,
        "by": {k: {"understood": c[0], "plans": c[1], "share": c[0] / c[1]}
               for k, c in sorted(counts.items())},
        "non_task_step": {**refusals,
                          "refused_share": refusals["refused"] / max(refusals["plans"], 1),
                          "named_share": refusals["named_the_step"]
                          / max(refusals["plans"], 1)},
    }
    if args.show_failures:
        result["failures"] = failures
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
