"""What does the object's keypoint group read of each phrasing? One JSON object.

The keypoint groups find the instruction's referents (policies/vla_model/keypoints.py): group g
attends over the instruction's tokens, and the words it pools choose where its heat maps
peak. Group 0 is the object to act on. For every template (training and held-out, every
task), filled with the same training words as benchmarks/phrasing_neighbours.py, this
reads group 0's attention on the first frame's instruction and reports the share that
lands on the object's words ("red block") and the word outside them that takes the most.
A held-out phrasing whose new noun ("fingers", "tower") draws group 0 away from the
object is one the policy cannot locate the object for, whatever the trunk understands of
the sentence. With `--eval results.json` (a `vla eval` run with per-phrasing counts) each
template's success rate is put beside it.

    python benchmarks/referent_attention.py [--checkpoint DIR] [--eval runs/val_l2/results.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/ is not a package
from phrasing_neighbours import WORDS, fill, phrasing_success  # noqa: E402

from sims.language import TEMPLATES  # noqa: E402


def object_attention(policy, instruction: str, obj: str) -> dict:
    """Group 0's attention over `instruction`'s tokens: the share on the words of `obj`
    and the strongest other word (special tokens excluded from "other")."""
    encoder = policy.language
    n = policy.model.cfg.language_max_tokens
    lang, mask = encoder.encode([instruction])
    n = min(n, lang.shape[1])
    with torch.no_grad():
        weights = policy.model.keypoints.attention(lang[:, :n], mask[:, :n])[0, 0]  # (L,)
    batch = encoder.tokenizer(instruction, return_offsets_mapping=True, truncation=True)
    offsets = batch["offset_mapping"][:n]
    tokens = encoder.tokenizer.convert_ids_to_tokens(batch["input_ids"][:n])
    start = instruction.index(obj)
    on_object = [start <= a < start + len(obj) and b > a for a, b in offsets]
    special = [b == a for a, b in offsets]  # [CLS], [SEP]: empty spans
    share = float(sum(w for w, o in zip(weights.tolist(), on_object) if o))
    others = [(w, t) for w, t, o, s in zip(weights.tolist(), tokens, on_object, special)
              if not o and not s]
    top_weight, top_word = max(others) if others else (0.0, "")
    return {"object_share": round(share, 3), "top_other_word": top_word,
            "top_other_weight": round(top_weight, 3)}


def rows(policy, templates: dict = TEMPLATES) -> list[dict]:
    """One row per (task, template): the mean over WORDS' fills."""
    out = []
    for task, (train, held) in templates.items():
        for template, split in [(t, "train") for t in train] + [(t, "held_out") for t in held]:
            reads = [object_attention(policy, fill(task, template, w), w["obj"])
                     for w in WORDS]
            top = max(reads, key=lambda r: r["top_other_weight"])
            out.append({"task": task, "template": template, "phrasing": split,
                        "object_share": round(sum(r["object_share"] for r in reads)
                                              / len(reads), 3),
                        "top_other_word": top["top_other_word"],
                        "top_other_weight": top["top_other_weight"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="policies/checkpoints/default")
    ap.add_argument("--eval", type=Path, help="a `vla eval` results.json with phrasings")
    args = ap.parse_args()
    from policies.vla_policy import VLAPolicy

    policy = VLAPolicy.from_pretrained(args.checkpoint, device="cpu", dtype="float32")
    if policy.model.keypoints is None or not hasattr(policy.model.keypoints, "attention"):
        sys.exit(f"--checkpoint {args.checkpoint}: no keypoint groups to read "
                 "(model.keypoint_groups); expected a checkpoint with them")
    table = rows(policy)
    if args.eval:
        success = phrasing_success(json.loads(args.eval.read_text()))
        for row in table:
            row["success"] = success.get(row["template"])  # [successes, episodes]
    print(json.dumps({"benchmark": "referent_attention", "checkpoint": args.checkpoint,
                      "words": WORDS, "rows": table}))


if __name__ == "__main__":
    main()
