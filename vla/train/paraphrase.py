"""Re-wording training instructions: the policy meets more ways of saying each task.

A demonstration's instruction comes from one of five training templates per task
(sims/language.py). With probability `paraphrase` (TrainConfig) the training loop swaps
a recognised instruction for a template of the same task from `PARAPHRASES`, filled with
the same object, target and location words. The robot's actions do not change: the
sentence means the same thing.

What keeps split L2 (held-out phrasings) honest: no word of the bank is a word that only
the held-out templates use ("grasp", "poke", "shove", ...); `held_out_only_words()`
computes that list from sims/language.py and tests/vla/test_paraphrase.py checks the bank
against it. So every word the policy meets on L2 that training never showed stays unseen.
"""

from __future__ import annotations

import re

import torch

from sims.commands import match
from sims.language import TEMPLATES

# task -> extra phrasings for training only. Written as ordinary variations of the
# training templates (other verbs, politeness, word order), never with a held-out-only word.
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "pick": (
        "get the {obj}", "lift up the {obj}", "pick up the {obj} please",
        "raise the {obj} into the air", "hoist the {obj}", "please pick the {obj} up",
        "can you lift the {obj}", "collect the {obj} and raise it",
        "pick the {obj} up from the table", "lift the {obj} up high",
    ),
    "place": (
        "put the {obj} into the {target} zone", "bring the {obj} to the {target} zone",
        "move the {obj} onto the {target} square", "place the {obj} inside the {target} area",
        "deliver the {obj} to the {target} zone", "drop the {obj} onto the {target} square",
        "can you put the {obj} in the {target} zone", "relocate the {obj} to the {target} area",
        "the {obj} goes in the {target} zone", "please set the {obj} in the {target} area",
    ),
    "stack": (
        "put the {obj} onto the {target}", "place the {obj} on top of the {target}",
        "stack the {obj} onto the {target}", "set the {obj} on top of the {target}",
        "rest the {obj} on the {target}", "pile the {obj} on the {target}",
        "put the {obj} on the {target}", "can you stack the {obj} on the {target}",
        "balance the {obj} on the {target}", "please place the {obj} on the {target}",
    ),
    "push_to": (
        "push the {obj} toward the {loc}", "slide the {obj} into the {loc}",
        "move the {obj} toward the {loc}", "nudge the {obj} to the {loc}",
        "push the {obj} all the way to the {loc}", "slide the {obj} toward the {loc} of the board",
        "can you push the {obj} to the {loc}", "sweep the {obj} to the {loc}",
        "guide the {obj} to the {loc}", "please push the {obj} to the {loc}",
    ),
    "touch": (
        "touch the {obj} using your gripper", "tap on the {obj}", "reach out and touch the {obj}",
        "point to the {obj}", "go to the {obj}", "move your gripper to the {obj}",
        "put the gripper on the {obj}", "can you touch the {obj}", "press the {obj}",
        "please tap the {obj}",
    ),
}


def words(template: str) -> set[str]:
    return set(re.sub(r"\{\w+\}", " ", template).split())


def held_out_only_words() -> set[str]:
    """Words of the held-out templates (split L2) that no training template uses."""
    train = set().union(*(words(t) for train, _ in TEMPLATES.values() for t in train))
    held = set().union(*(words(t) for _, held in TEMPLATES.values() for t in held))
    return held - train


class Paraphraser:
    """Swaps recognised training instructions for a bank phrasing with `probability`.

    Random draws come from the torch generator it is given (the training loop's
    augmentation generator, saved with each checkpoint), so a resumed run re-words the
    same instructions it would have re-worded.
    """

    def __init__(self, probability: float, bank: dict[str, tuple[str, ...]] | None = None):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"paraphrase={probability!r}: expected a probability in [0, 1]")
        self.probability = probability
        self.bank = PARAPHRASES if bank is None else bank
        self._seen: dict[str, tuple[str, dict[str, str]] | None] = {}
        self.drawn = self.reworded = 0  # instructions seen and re-worded so far

    def recognise(self, text: str) -> tuple[str, dict[str, str]] | None:
        """(task, fields) of a training instruction of a task the bank has; else None."""
        if text not in self._seen:
            found = match(text, held_out=False)  # the grammar of `vla command`
            self._seen[text] = (None if found is None or found[0] not in self.bank
                                else (found[0], found[2]))
        return self._seen[text]

    def __call__(self, instructions: list[str], generator: torch.Generator) -> list[str]:
        if self.probability == 0.0:
            return instructions
        draws = torch.rand(len(instructions), generator=generator).tolist()
        picks = torch.randint(1 << 30, (len(instructions),), generator=generator).tolist()
        out = []
        for text, draw, pick in zip(instructions, draws, picks, strict=True):
            known = self.recognise(text) if draw < self.probability else None
            if known is None:
                out.append(text)
                continue
            task, fields = known
            options = self.bank[task]
            out.append(options[pick % len(options)].format(**fields))
        self.drawn += len(instructions)
        self.reworded += sum(a != b for a, b in zip(instructions, out, strict=True))
        return out
