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

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from policies.grounding import GroundingModel, grounding_loss, init_from, save_grounding
from policies.language import LanguageEncoder
from policies.vla_model.configuration import ModelConfig
from vla.pretrain.data import GroundingData
from vla.pretrain.scenes import generate
from vla.run.config import NewModel, RunConfig
from vla.run.directory import RunDirectory
from vla.run.precision import amp_dtype, autocast
from vla.run.progress import show_progress
from vla.run.steps import Job, run_steps, tensorboard
from vla.train import distributed
from vla.train.augment import augment_images
from vla.train.data import lr_lambda


@dataclass
class PretrainConfig(RunConfig, NewModel):
    scenes: int = 20000  # captioned scenes to train on (4 captions each)
    val_scenes: int = 500  # another seed's scenes, for the metrics in summary.json
    scenes_dir: str = ""  # "" = RUN/scenes (and RUN/val_scenes)
    workers: int = 2  # scene-making processes
    # `size` and `model` must match the policy that will start from it; `init_from`
    # continues from another grounding or policy checkpoint.
    steps: int = 3000
    lr: float = 1e-3
    warmup_steps: int = 100

    def validate(self) -> None:
        RunConfig.validate(self)
        NewModel.validate(self)
        for name in ("scenes", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected at least 1")
        if self.val_scenes < 0:
            raise ValueError(f"val_scenes={self.val_scenes}; expected 0 or more")
        from policies.grounding import check_groundable

        check_groundable(self.model_config())

    def model_config(self) -> ModelConfig:
        # The action and state sizes do not matter here: only the grounding path is built.
        return NewModel.model_config(self, state_dim=1, action_dim=1)


def pretrain(cfg: PretrainConfig, out: str, resume: bool = False,
             progress: bool | None = None, device: str = "auto",
             scenes_only: bool = False) -> dict:
    """Make the captioned scenes, then train the grounding path on them into `out`."""
    cfg.validate()
    run = RunDirectory(out, resume)
    scenes_dir = Path(cfg.scenes_dir) if cfg.scenes_dir else run.path / "scenes"
    val_dir = scenes_dir.with_name(f"val_{scenes_dir.name}")
    t0 = time.perf_counter()
    made = generate(str(scenes_dir), cfg.scenes, cfg.workers, cfg.seed,
                    progress=show_progress(progress))
    if cfg.val_scenes:  # another seed: no validation scene is a training scene
        generate(str(val_dir), cfg.val_scenes, cfg.workers, cfg.seed + 1,
                 progress=show_progress(progress))
    scene_seconds = time.perf_counter() - t0
    if scenes_only:
        return {"scenes": made["scenes"], "scenes_dir": str(scenes_dir),
                "scene_seconds": scene_seconds}

    dev = distributed.device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    job, model, language, data = _job(cfg, run, dev, scenes_dir, made)
    first = run.load_state(job.optimizer, job.scheduler, job.generators) if resume else 0
    run.write_config("pretrain", cfg)
    writer = tensorboard(run.path / "tb")
    outcome = run_steps(job, run, first, progress=progress, writer=writer)
    summary = {"steps": outcome.step, "final_loss": outcome.scalars.get("loss", float("nan")),
               "scenes": len(data), "scene_seconds": round(scene_seconds, 1),
               "train_seconds": round(outcome.seconds, 1),
               "samples_per_s": (outcome.samples / outcome.seconds if outcome.seconds
                                 else None),
               "device": str(dev), "checkpoint": str(run.checkpoint)}
    if cfg.val_scenes:
        mcfg = model.cfg
        val = GroundingData(str(val_dir), mcfg.image_size, mcfg.image_size // 4)
        summary["validation"] = evaluate_grounding(model, language, val, dev)
    (run.path / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    writer.close()
    return summary


def _job(cfg: PretrainConfig, run: RunDirectory, dev, scenes_dir: Path, made: dict):
    """The skeleton's `Job` for grounding pretraining: the model, its data and one step."""
    mcfg = cfg.model_config()
    language = LanguageEncoder(mcfg.language_model, mcfg.language_max_tokens, dev)
    model = GroundingModel(mcfg, language.width)
    loaded = init_from(model, cfg.init_from) if cfg.init_from and not run.resume else {}
    if run.resume:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(run.checkpoint / "model.safetensors")))
    model.to(dev).train()
    data = GroundingData(str(scenes_dir), mcfg.image_size, mcfg.image_size // 4,
                         limit=cfg.scenes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lr_lambda(cfg.warmup_steps, cfg.steps))
    gen = torch.Generator().manual_seed(cfg.seed)
    amp = amp_dtype(cfg.amp, dev)
    record = {"scenes": len(data), "captions": int(data.captions.size),
              "scenes_dir": str(scenes_dir), "scenes_manifest": made, **loaded}
    done = {"steps": 0}

    def step() -> dict[str, float]:
        batch = data.batch(cfg.batch_size, gen)
        images = _jitter(batch["images"], cfg, gen).to(dev)
        lang, lang_mask = language.encode(batch["instruction"])
        with autocast(dev, amp):
            heat = model(images, lang, lang_mask)
        loss = grounding_loss(heat, batch["targets"].to(dev), batch["absent"].to(dev),
                              mcfg.keypoint_groups)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        done["steps"] = scheduler.last_epoch
        return {"loss": loss.item()}

    def write(staging: Path) -> None:
        save_grounding(staging, model, language.width, {**record, "steps": done["steps"]})

    job = Job("pretrain", cfg.steps, step, write, optimizer, scheduler, {"batches": gen}, cfg,
              cfg.log_every, cfg.checkpoint_every, samples_per_step=cfg.batch_size)
    return job, model, language, data


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
    return augment_images(images, gen, 0, cfg.brightness, cfg.contrast)
