"""benchmarks/referent_attention.py: the share of keypoint group 0's attention that lands
on the object's words."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from policies.language import LanguageEncoder
from policies.vla_model.configuration import PACKAGED_MINILM, model_config
from policies.vla_model.modeling import VLAModel
from tests.benchmark_module import load_benchmark


@pytest.fixture(scope="module")
def uniform_policy():
    """A tiny two-group model whose group queries are zero: every group attends evenly to
    the instruction's real tokens, so the object's share is its token count's share."""
    language = LanguageEncoder(PACKAGED_MINILM, max_tokens=16)
    model = VLAModel(model_config("tiny", state_dim=6, action_dim=5, keypoint_groups=2),
                     language.width)
    with torch.no_grad():
        model.keypoints.queries.zero_()
    return SimpleNamespace(language=language, model=model)


def test_the_object_share_counts_the_object_words_tokens(uniform_policy):
    bench = load_benchmark("referent_attention")
    # [CLS] touch the red block [SEP]: 6 tokens, 2 of them the object's
    read = bench.object_attention(uniform_policy, "touch the red block", "red block")
    assert read["object_share"] == pytest.approx(2 / 6, abs=1e-3)
    assert read["top_other_word"] in ("touch", "the")  # not [CLS] or [SEP]
    assert read["top_other_weight"] == pytest.approx(1 / 6, abs=1e-3)
    longer = bench.object_attention(uniform_policy, "put your hand on the red block",
                                    "red block")
    assert longer["object_share"] == pytest.approx(2 / 9, abs=1e-3)  # 9 tokens


def test_rows_cover_every_template_with_its_split(uniform_policy):
    bench = load_benchmark("referent_attention")
    templates = {"touch": (("touch the {obj}",), ("poke the {obj}",)),
                 "stack": (("stack the {obj} on the {target}",), ())}
    rows = bench.rows(uniform_policy, templates)
    assert [(r["task"], r["phrasing"]) for r in rows] == [
        ("touch", "train"), ("touch", "held_out"), ("stack", "train")]
    assert all(0 < r["object_share"] < 1 for r in rows)
