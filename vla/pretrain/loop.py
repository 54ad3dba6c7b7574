"""`pretrain()`: train the grounding path (conv stem + referent keypoints) on captioned
synthetic scenes, with no robot actions (`vla pretrain`).

    RUN/scenes/, RUN/val_scenes/   captioned scenes (vla/pretrain/scenes.py), unless
                                   `scenes_dir` names a shared directory
    RUN/checkpoint/                grounding checkpoint: config.json, model.safetensors
                                   (vision.stem.*, keypoints.*), train state for --resume
    RUN/summary.json               cost and validation metrics

`vla train ... init_from=RUN` starts a policy's stem and keypoints from it, and
`grounding_data=RUN/scenes` keeps the grounding loss on while the policy trains.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from policies.config import SIZES, ModelConfig


@dataclass
class PretrainConfig:
    scenes: int = 20000  # captioned scenes to train on (4 captions each)
    val_scenes: int = 500  # another seed's scenes, for the metrics in summary.json
    scenes_dir: str = ""  # "" = RUN/scenes (and RUN/val_scenes)
    workers: int = 2  # scene-making processes
    seed: int = 0
    size: str = "small"  # must match the policy that will start from it
    model: dict = field(default_factory=dict)  # ModelConfig overrides, as in `vla train`
    init_from: str = ""  # continue from another grounding or policy checkpoint
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    brightness: float = 0.15
    contrast: float = 0.15
    checkpoint_every: int = 500
    log_every: int = 20
    amp: str = "auto"  # as in `vla train`
    threads: int = 0

    def validate(self) -> None:
        for name in ("scenes", "steps", "batch_size", "checkpoint_every", "workers",
                     "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected at least 1")
        if self.lr <= 0 or self.warmup_steps < 0:
            raise ValueError(f"lr={self.lr}, warmup_steps={self.warmup_steps}; expected a "
                             f"positive learning rate and warmup_steps >= 0")
        if self.size not in SIZES:
            raise ValueError(f"size={self.size!r}; expected one of {list(SIZES)}")
        if self.val_scenes < 0:
            raise ValueError(f"val_scenes={self.val_scenes}; expected 0 or more")
        from policies.grounding import check_groundable

        check_groundable(self.model_config())

    def model_config(self) -> ModelConfig:
        from vla.train.config import build_model_config

        # The action and state sizes do not matter here: only the grounding path is built.
        return build_model_config(self.size, self.model, state_dim=1, action_dim=1)


def pretrain(cfg: PretrainConfig, out: str, resume: bool = False,
             progress: bool | None = None, device: str = "auto",
             scenes_only: bool = False) -> dict:
    from policies.checkpoint import recover, swap_into_place
    from policies.grounding import GroundingModel, grounding_loss, init_from, save_grounding
    from policies.language import LanguageEncoder
    from vla.pretrain.data import GroundingData
    from vla.pretrain.scenes import generate
    from vla.train import distributed
    from vla.train.data import lr_lambda
    from vla.train.loop import _amp_dtype, _is_tty, _progress, _tensorboard
    from vla.train.state import load_train_state, save_train_state

    cfg.validate()
    run = Path(out)
    ckpt = run / "checkpoint"
    recover(ckpt)
    if resume and not (ckpt / "train_state.json").is_file():
        raise FileNotFoundError(f"--resume: {ckpt} holds no resumable checkpoint")
    if not resume and ckpt.exists():
        raise FileExistsError(f"{str(run)!r} already holds a checkpoint; pass --resume to "
                              f"continue it or choose another --out")
    scenes_dir = Path(cfg.scenes_dir) if cfg.scenes_dir else run / "scenes"
    val_dir = scenes_dir.with_name(f"val_{scenes_dir.name}")
    t0 = time.perf_counter()
    show = _is_tty() if progress is None else progress  # bars on a terminal only
    made = generate(str(scenes_dir), cfg.scenes, cfg.workers, cfg.seed, progress=show)
    if cfg.val_scenes:  # another seed: no validation scene is a training scene
        generate(str(val_dir), cfg.val_scenes, cfg.workers, cfg.seed + 1, progress=show)
    scene_seconds = time.perf_counter() - t0
    if scenes_only:
        return {"scenes": made["scenes"], "scenes_dir": str(scenes_dir),
                "scene_seconds": scene_seconds}

    dev = distributed.device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    mcfg = cfg.model_config()
    language = LanguageEncoder(mcfg.language_model, mcfg.language_max_tokens, dev)
    model = GroundingModel(mcfg, language.width)
    loaded = init_from(model, cfg.init_from) if cfg.init_from and not resume else {}
    model.to(dev).train()
    heat_size = mcfg.image_size // 4
    data = GroundingData(str(scenes_dir), mcfg.image_size, heat_size, limit=cfg.scenes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lr_lambda(cfg.warmup_steps, cfg.steps))
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    if resume:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(ckpt / "model.safetensors")))
        step = load_train_state(ckpt, optimizer, scheduler, {"batches": gen})["step"]
    run.mkdir(parents=True, exist_ok=True)
    (run / "pretrain_config.yaml").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
    writer = _tensorboard(run / "tb")
    amp = _amp_dtype(cfg.amp, dev)
    groups = mcfg.keypoint_groups
    record = {"scenes": len(data), "captions": int(data.captions.size),
              "scenes_dir": str(scenes_dir), "scenes_manifest": made, **loaded}

    def save() -> None:
        staging = ckpt.with_name(f".{ckpt.name}.staging-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        save_grounding(staging, model, language.width, {**record, "steps": step})
        save_train_state(staging, optimizer, scheduler, {"batches": gen}, step,
                         {"config": dataclasses.asdict(cfg)})
        swap_into_place(staging, ckpt)

    bar = _progress(cfg.steps, step, True, progress, desc="pretrain")
    t_train, first = time.perf_counter(), step
    loss_value = float("nan")
    while step < cfg.steps:
        batch = data.batch(cfg.batch_size, gen)
        images = _jitter(batch["images"], cfg, gen).to(dev)
        lang, lang_mask = language.encode(batch["instruction"])
        with torch.autocast(dev.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            heat = model(images, lang, lang_mask)
        loss = grounding_loss(heat, batch["targets"].to(dev), batch["absent"].to(dev), groups)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        loss_value = loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.3f}")
        if step % cfg.log_every == 0:
            writer.add_scalar("pretrain/loss", loss_value, step)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save()
    bar.close()
    seconds = time.perf_counter() - t_train
    summary = {"steps": step, "final_loss": loss_value, "scenes": len(data),
               "scene_seconds": round(scene_seconds, 1), "train_seconds": round(seconds, 1),
               "samples_per_s": (step - first) * cfg.batch_size / seconds if seconds else None,
               "device": str(dev), "checkpoint": str(ckpt)}
    if cfg.val_scenes:
        val = GroundingData(str(val_dir), mcfg.image_size, heat_size)
        summary["validation"] = evaluate_grounding(model, language, val, dev)
    (run / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    writer.close()
    return summary


@torch.no_grad()
def evaluate_grounding(model, language, data, dev, batch_size: int = 128) -> dict:
    """On every caption of `data`: how often each present referent is found, and how
    well the maps' sharpness tells present referents from absent ones (ROC AUC)."""
    from policies.grounding import grounding_heat, grounding_metrics

    was_training = model.training
    model.eval()
    groups = model.cfg.keypoint_groups
    hits, present_scores, absent_scores, n_present = 0, [], [], 0
    n, c = data.captions.shape
    scene = torch.arange(n).repeat_interleave(c)
    caption = torch.arange(c).repeat(n)
    for i in range(0, len(scene), batch_size):
        batch = data.select(scene[i : i + batch_size], caption[i : i + batch_size])
        lang, lang_mask = language.encode(batch["instruction"])
        heat = grounding_heat(model, batch["images"].to(dev), lang, lang_mask).cpu()
        m = grounding_metrics(heat, batch["targets"], batch["absent"], groups)
        absent = batch["absent"]
        hits += int(m["hit"].sum())
        n_present += int((~absent).sum())
        present_scores += m["score"][~absent].tolist()
        absent_scores += m["score"][absent].tolist()
    model.train(was_training)
    return {"referents": n_present + len(absent_scores),
            "found": hits / max(n_present, 1),
            "absent_auc": _auc(present_scores, absent_scores)}


def _auc(positive: list[float], negative: list[float]) -> float | None:
    """P(score of a present referent > score of an absent one)."""
    if not positive or not negative:
        return None
    pos = torch.tensor(positive)
    neg = torch.tensor(negative)
    greater = (pos[:, None] > neg[None, :]).float().mean()
    ties = (pos[:, None] == neg[None, :]).float().mean()
    return float(greater + 0.5 * ties)


def _jitter(images: torch.Tensor, cfg: PretrainConfig, gen: torch.Generator):
    """Brightness and contrast only: a shift would move the targets too."""
    from vla.train.augment import augment_images

    return augment_images(images, gen, 0, cfg.brightness, cfg.contrast)
