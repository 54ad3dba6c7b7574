"""Does the frozen language encoder itself know what a held-out phrasing means?

For every held-out template (split L2's phrasings, and the held-out task's), filled with
the same words as every training template, the nearest training instruction by the
cosine of MiniLM's mean-pooled sentence embeddings (what all-MiniLM-L6-v2 was trained to
make similar for paraphrases) and the task it belongs to. If the nearest training
instruction is of the right task while the policy fails the phrasing (`vla eval`'s
per-phrasing counts, `--eval results.json`), the meaning is in the encoder's features
and the policy does not read it; if it is of the wrong task, the encoder confuses them.
One JSON object.

    python benchmarks/phrasing_neighbours.py [--eval runs/val_l2/results.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from policies.language import sentence_embedding
from sims.language import TEMPLATES
from sims.splits import HELD_OUT_TASK

# Words to fill the templates with: two scenes' worth, training colours and shapes.
WORDS = ({"obj": "red block", "target": "blue cube", "zone": "green", "loc": "top left corner"},
         {"obj": "yellow cylinder", "target": "gray block", "zone": "brown",
          "loc": "right edge"})


def fill(task: str, template: str, words: dict) -> str:
    target = words["zone"] if task == "place" else words["target"]
    return template.format(obj=words["obj"], target=target, loc=words["loc"])


def sentence_embeddings(texts: list[str], encoder) -> torch.Tensor:
    """(N, width) unit vectors: the mean of the encoder's token features over each text."""
    return sentence_embedding(*encoder.encode(texts))


def neighbours(encoder, templates: dict = TEMPLATES) -> list[dict]:
    """Per held-out template and fill of WORDS: the nearest training instruction."""
    rows = []
    training_tasks = [t for t in templates if t != HELD_OUT_TASK]
    for words in WORDS:
        train = [(task, t) for task in training_tasks for t in templates[task][0]]
        train_emb = sentence_embeddings([fill(task, t, words) for task, t in train], encoder)
        for task, (_, held) in templates.items():
            for template in held:
                emb = sentence_embeddings([fill(task, template, words)], encoder)
                cos = (emb @ train_emb.T)[0]  # (n_train,)
                best = int(cos.argmax())
                own = [i for i, (t, _) in enumerate(train) if t == task]
                rows.append({"task": task, "template": template,
                             "nearest_task": train[best][0], "nearest": train[best][1],
                             "cosine": round(float(cos[best]), 3),
                             "best_own_task_cosine": (round(float(cos[own].max()), 3)
                                                      if own else None)})
    return rows


def phrasing_success(results: dict) -> dict[str, list[int]]:
    """A `vla eval` results.json's per-phrasing counts, summed over cells:
    template -> [successes, episodes]."""
    success: dict[str, list[int]] = {}
    for cell in results["cells"].values():
        for template, count in cell.get("phrasings", {}).items():
            total = success.setdefault(template, [0, 0])
            total[0] += count["successes"]
            total[1] += count["episodes"]
    return success


def main() -> None:
    from policies.language import LanguageEncoder
    from policies.vla_model.configuration import PACKAGED_MINILM

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval", help="a `vla eval` results.json whose per-phrasing success "
                                   "to put beside each template")
    args = ap.parse_args()
    rows = neighbours(LanguageEncoder(PACKAGED_MINILM, max_tokens=32))
    success = phrasing_success(json.loads(Path(args.eval).read_text())) if args.eval else {}
    by_template: dict[str, dict] = {}
    for row in rows:
        entry = by_template.setdefault(row["template"], {
            "task": row["task"], "right_task": 0, "fills": 0, "nearest": [],
            "policy_success": success.get(row["template"])})
        entry["fills"] += 1
        entry["right_task"] += row["nearest_task"] == row["task"]
        entry["nearest"].append(f"{row['nearest_task']}: {row['nearest']} ({row['cosine']})")
    trained = [r for r in rows if r["task"] != HELD_OUT_TASK]
    print(json.dumps({
        "encoder": "all-MiniLM-L6-v2, mean-pooled token features",
        "heldout_phrasings_nearest_is_own_task": sum(r["nearest_task"] == r["task"]
                                                     for r in trained) / len(trained),
        "fills": len(trained),
        "templates": by_template,
    }, indent=1))


if __name__ == "__main__":
    main()
