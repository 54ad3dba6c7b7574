"""Grounding pretraining: captioned scenes, the grounding loss, `vla pretrain`, and a
policy that starts from it (`init_from`) and keeps it (`grounding_data`)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.benchmark_module import load_benchmark
from vla.cli import main

TINY = ["size=tiny", "model.keypoint_groups=2"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> str:
    """A tiny grounding run: 250 scenes, 6 steps."""
    run = tmp_path_factory.mktemp("pretrain") / "run"
    code = main(["pretrain", "--out", str(run), *TINY, "scenes=250", "val_scenes=250",
                 "steps=6", "batch_size=8", "checkpoint_every=3", "workers=1"])
    assert code == 0
    return str(run)


def test_captions_use_training_phrasings_and_name_absent_things_truly():
    from sims.captioned import ABSENT, PHRASINGS, SceneMaker
    from sims.language import TEMPLATES
    from sims.splits import HELD_OUT_COMBOS, HELD_OUT_TASK
    from sims.vocabulary import ABSENT_NOUNS

    held_out = [t for _, held in TEMPLATES.values() for t in held]
    held_out += list(TEMPLATES[HELD_OUT_TASK][0])
    pattern = [re.compile("^" + re.escape(t).replace(r"\{obj\}", ".+")
                          .replace(r"\{target\}", ".+").replace(r"\{loc\}", ".+") + "$")
               for t in held_out]
    assert HELD_OUT_TASK not in PHRASINGS
    # L2's held-out colour-task pairs never appear in a task phrasing.
    held_pairs = [re.compile("^" + re.escape(t).replace(r"\{obj\}", rf".*\b{colour}\b.*")
                             .replace(r"\{target\}", ".+").replace(r"\{loc\}", ".+") + "$")
                  for task, colour in HELD_OUT_COMBOS.items() if task in PHRASINGS
                  for t in PHRASINGS[task]]
    maker = SceneMaker(64)
    rng = np.random.default_rng(0)
    absent = present = absent_things = 0
    try:
        for _ in range(40):
            image, seg, captions = maker.make(rng)
            assert image.shape == (64, 64, 3) and seg.shape == (64, 64)
            for c in captions:
                assert not any(p.match(c.text) for p in pattern), c.text
                assert not any(p.match(c.text) for p in held_pairs), c.text
                named = [n for n in ABSENT_NOUNS if re.search(rf"\b{n}\b", c.text)]
                if named:  # an everyday thing no scene contains: some referent is absent
                    assert ABSENT in c.referents, c.text
                    absent_things += 1
                for ref in c.referents:
                    if ref >= 0:  # a slot: visible in the segmentation
                        assert (seg == ref).sum() >= 4
                        present += 1
                    absent += ref == ABSENT
    finally:
        maker.close()
    assert present > 50 and absent > 10 and absent_things > 3


def test_grounding_loss_is_zero_when_maps_match_and_flat_when_absent():
    from policies.grounding import grounding_loss, referent_targets

    seg = torch.full((1, 16, 16), -1, dtype=torch.int8)
    seg[0, 4:8, 10:14] = 0  # slot 0
    refs = torch.tensor([[0, -2]])  # referent 1 absent
    targets, absent = referent_targets(seg, refs, torch.full((1, 2, 2), float("nan")), 8)
    assert absent.tolist() == [[False, True]]
    assert targets[0, 0].sum() == pytest.approx(1.0)
    assert targets[0, 0, 2:4, 5:7].sum() == pytest.approx(1.0)
    # 2 groups of 2 maps: group 0 is the target's log, group 1 flat -> loss 0.
    log_t = torch.log(targets[0, 0].clamp(min=1e-9))
    heat = torch.stack([log_t, log_t, torch.zeros(8, 8), torch.zeros(8, 8)])[None]
    assert grounding_loss(heat, targets, absent, groups=2).item() == pytest.approx(0, abs=1e-4)
    peaked = heat.clone()
    peaked[0, 2, 0, 0] = 10.0  # an absent referent's map that peaks is penalised
    assert grounding_loss(peaked, targets, absent, groups=2).item() > 0.1


def test_vla_pretrain_writes_a_grounding_checkpoint_and_resumes(pretrained, capsys):
    ckpt = f"{pretrained}/checkpoint"
    config = json.loads(open(f"{ckpt}/config.json").read())
    assert config["format"] == "vla-grounding" and config["pretraining"]["scenes"] == 250
    weights = load_file(f"{ckpt}/model.safetensors")
    assert weights and all(k.startswith(("vision.stem.", "keypoints.")) for k in weights)
    summary = json.loads(open(f"{pretrained}/summary.json").read())
    assert summary["steps"] == 6 and 0 <= summary["validation"]["found"] <= 1
    assert summary["validation"]["absent_auc"] is not None
    code = main(["pretrain", "--out", pretrained, *TINY, "scenes=250", "val_scenes=0",
                 "steps=8", "batch_size=8", "workers=1", "--resume"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 8


@pytest.fixture(scope="module")
def grounded_run(pretrained, tiny_datasets, tmp_path_factory) -> tuple[str, dict]:
    """A tiny policy started from `pretrained` and co-trained on its scenes (2 steps)."""
    from vla.config import load_config
    from vla.train.config import TrainConfig
    from vla.train.loop import train

    run = tmp_path_factory.mktemp("grounded") / "policy"
    cfg = load_config(TrainConfig, "configs/tiny.yaml", [
        f"data={tiny_datasets!r}", "model.keypoint_groups=2", "steps=2", "eval_episodes=0",
        f"init_from={pretrained!r}", f"grounding_data={pretrained + '/scenes'!r}",
        "grounding_batch=4"])
    return str(run), train(cfg, str(run), progress=False)


def test_a_policy_starts_from_pretraining_and_keeps_the_grounding_loss(grounded_run):
    _, summary = grounded_run
    assert summary["init_format"] == "vla-grounding" and summary["init_tensors"] > 0
    assert summary["grounding_scenes"] == 250
    assert np.isfinite(summary["final_grounding_loss"]) and np.isfinite(summary["final_loss"])


def test_vla_train_takes_init_from_and_grounding_data_on_the_command_line(
        pretrained, tiny_datasets, tmp_path, capsys):
    code = main(["train", "--config", "configs/tiny.yaml", "--data", *tiny_datasets,
                 "--out", str(tmp_path / "p"), "model.keypoint_groups=2", "steps=1",
                 "eval_episodes=0", f"init_from={pretrained}",
                 f"grounding_data={pretrained}/scenes", "grounding_batch=2"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["grounding_scenes"] == 250


def test_init_from_a_mismatched_model_names_the_setting(pretrained, tiny_datasets, tmp_path,
                                                       capsys):
    code = main(["train", "--config", "configs/tiny.yaml", "--data", *tiny_datasets,
                 "--out", str(tmp_path / "p"), "model.keypoint_groups=4", "steps=1",
                 "eval_episodes=0", f"init_from={pretrained}"])
    assert code == 2
    assert "keypoint_groups=2" in capsys.readouterr().err


def test_collect_refuses_the_held_out_split(tmp_path, capsys):
    code = main(["collect", "--task", "pick", "--split", "L3", "--episodes", "1",
                 "--out", str(tmp_path / "d")])
    assert code == 2
    err = capsys.readouterr().err
    assert "held out" in err and "orange" in err


def test_the_referent_score_is_the_lower_of_the_two_named_things():
    from policies.presence import concentration

    heat = torch.zeros(1, 4, 8, 8)  # 2 groups of 2 maps
    heat[0, 0, 3, 3] = heat[0, 1, 3, 3] = 20.0  # group 0 found its thing; group 1 is flat
    assert concentration(heat, referent_groups=2).item() == pytest.approx(0.0, abs=1e-3)
    assert concentration(heat).item() > 1.0  # the mean over all maps hides the absence


def test_the_object_score_reads_group_0s_mean_map():
    from policies.presence import presence_score

    same = torch.zeros(1, 16, 8, 8)  # 2 groups of 8 maps; group 0's all peak on one pixel
    same[0, :8, 3, 3] = 30.0
    spread = torch.zeros(1, 16, 8, 8)  # each of group 0's maps peaks somewhere else
    for k in range(8):
        spread[0, k, k, (3 * k) % 8] = 30.0
    flat = torch.zeros(1, 16, 8, 8)
    obj = {name: presence_score(h, "object", 2).item()
           for name, h in (("same", same), ("spread", spread), ("flat", flat))}
    assert obj["same"] == pytest.approx(np.log(64), abs=1e-3)
    assert obj["spread"] == pytest.approx(np.log(64 / 8), abs=1e-3)
    assert obj["flat"] == pytest.approx(0.0, abs=1e-4)
    # Single-map sharpness cannot tell "all on one thing" from "each somewhere else".
    assert presence_score(same, "referents", 2).item() == pytest.approx(
        presence_score(spread, "referents", 2).item(), abs=1e-3)
    with pytest.raises(ValueError, match="method='sharpest'"):
        presence_score(same, "sharpest", 2)


def test_refusal_threshold_is_split_conformal():
    bench = load_benchmark("presence_score")
    scores = np.random.default_rng(0).permutation(100).astype(float)  # 0..99
    assert bench.conformal_threshold(scores, 0.05) == 4.0  # k = floor(0.05 * 101) = 5th lowest
    assert bench.conformal_threshold(scores[:10], 0.05) == float("-inf")  # too few to promise


def test_presence_json_chooses_the_method(grounded_run, tiny_checkpoint, tmp_path):
    import shutil

    from policies.vla_policy import VLAPolicy

    ckpt = tmp_path / "ckpt"
    shutil.copytree(f"{grounded_run[0]}/checkpoint", ckpt)
    (ckpt / "presence.json").write_text(json.dumps({"threshold": 1.5, "method": "object"}))
    policy = VLAPolicy.from_pretrained(ckpt, device="cpu")
    assert policy.presence_threshold == 1.5 and policy.presence_method == "object"
    contract = policy.contract
    obs = {"images": {n: np.zeros((*contract.cameras[n], 3), np.uint8)
                      for n in policy.cfg.cameras},
           "state": np.zeros(policy.cfg.state_dim, np.float32), "instruction": "lift the cube"}
    # A KL divergence from a flat map: at least 0, at most log(pixels) of any map.
    side = policy.cfg.image_size
    assert 0.0 <= policy.infer(obs).presence <= np.log(side * side)
    (ckpt / "presence.json").write_text(json.dumps({"threshold": 1.5, "method": "best"}))
    with pytest.raises(ValueError, match="method='best'"):
        VLAPolicy.from_pretrained(ckpt, device="cpu")
    # A checkpoint written before the rename: grounding.json, its method under "score".
    (ckpt / "presence.json").unlink()
    (ckpt / "grounding.json").write_text(json.dumps({"threshold": 2.5, "score": "referents"}))
    policy = VLAPolicy.from_pretrained(ckpt, device="cpu")
    assert policy.presence_threshold == 2.5 and policy.presence_method == "referents"
    plain = tmp_path / "plain"  # no referent groups: the referent method cannot apply
    shutil.copytree(tiny_checkpoint, plain)
    (plain / "presence.json").write_text(json.dumps({"threshold": 1.5, "method": "referents"}))
    with pytest.raises(ValueError, match="keypoint_groups=0"):
        VLAPolicy.from_pretrained(plain, device="cpu")


def test_refusal_benchmark_unknown_things_are_outside_every_vocabulary():

    from sims.language import TEMPLATES
    from sims.scene import COLORS, SHAPES
    from sims.vocabulary import ABSENT_NOUNS, GENERIC_NOUNS, SHAPE_KINDS, color_vocabulary

    bench = load_benchmark("presence_score")
    known = {w for name in color_vocabulary() for w in name.split()}
    known |= {w for k in SHAPE_KINDS for w in k.words} | set(GENERIC_NOUNS)
    known |= set(COLORS) | set(SHAPES)
    known |= {w for train, held in TEMPLATES.values() for t in train + held for w in t.split()}
    for thing in bench.UNKNOWN_THINGS:
        assert not set(thing.split()) & known, thing
    # Pretraining's absent things are neither known words nor the benchmark's unknown ones.
    known |= {w for train, held in TEMPLATES.values() for t in train + held
              for w in t.replace("{", " ").replace("}", " ").split()}
    unknown = {w for thing in bench.UNKNOWN_THINGS for w in thing.split()}
    for noun in ABSENT_NOUNS:
        assert not set(noun.split()) & (known | unknown), noun
    assert len(set(ABSENT_NOUNS)) == len(ABSENT_NOUNS)


def test_colour_names_are_unique_after_normalising():
    from sims.vocabulary import color_vocabulary

    names = ["".join(c for c in n if c.isalpha()).replace("grey", "gray")
             for n in color_vocabulary()]
    assert len(names) == len(set(names)) > 900


def test_finetune_refuses_grounding_data_when_the_grounding_path_is_frozen():
    from vla.train.finetune import FinetuneConfig

    with pytest.raises(ValueError, match="method='full'"):
        FinetuneConfig(method="lora", grounding_data="scenes").validate()


def test_pretraining_can_start_from_a_policy_grounding_path(grounded_run, pretrained, tmp_path,
                                                           capsys):
    code = main(["pretrain", "--out", str(tmp_path / "again"), *TINY, "scenes=250",
                 "val_scenes=0", "steps=1", "batch_size=4", f"init_from={grounded_run[0]}",
                 f"scenes_dir={pretrained}/scenes"])
    assert code == 0
    config = json.loads((tmp_path / "again" / "checkpoint" / "config.json").read_text())
    assert config["pretraining"]["init_format"] == "vla-policy"
