"""benchmarks/phrasing_neighbours.py: the nearest training instruction by the packaged
MiniLM's sentence embedding."""

from __future__ import annotations

from policies.language import LanguageEncoder
from policies.vla_model.configuration import PACKAGED_MINILM
from tests.benchmark_module import load_benchmark


def test_a_training_phrasing_is_its_own_nearest_neighbour():
    bench = load_benchmark("phrasing_neighbours")
    templates = {"pick": (("pick up the {obj}", "lift the {obj}"), ("lift the {obj}",)),
                 "touch": (("touch the {obj}",), ("tap the {obj}",)),
                 "push_next": ((), ("push the {obj} next to the {target}",))}
    rows = bench.neighbours(LanguageEncoder(PACKAGED_MINILM, max_tokens=32), templates)
    assert len(rows) == 3 * len(bench.WORDS)
    lift = [r for r in rows if r["template"] == "lift the {obj}"]
    assert all(r["nearest"] == "lift the {obj}" and r["cosine"] > 0.999 for r in lift)
    tap = [r for r in rows if r["template"] == "tap the {obj}"]
    assert all(r["best_own_task_cosine"] < 0.999 for r in tap)  # not a training phrasing
    held_task = [r for r in rows if r["task"] == "push_next"]
    assert all(r["best_own_task_cosine"] is None for r in held_task)  # never trained
