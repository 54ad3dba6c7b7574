"""`train()`: the training run behind `vla train`, `vla finetune` and each DAgger round
(single process, or DDP via torchrun), on the run skeleton of vla/run/.

    RUN/checkpoint/   the latest complete checkpoint (policy, or LoRA adapter, + state for
                      --resume)
    RUN/tb/           TensorBoard logs
    RUN/train_config.yaml, RUN/summary.json

What a run trains comes from a `Start`: the model (with its trainable parameters already
chosen: everything from scratch, a subset or LoRA matrices when fine-tuning), the action
tokenizer and contract it speaks, and how its checkpoint is written. `from_scratch` is
`vla train`'s; vla/train/finetune.py builds the others. One step is `ActionStep`
(vla/train/step.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bridges.contract import ActionContract
from policies.checkpoint import load_model, save_pretrained
from policies.language import LanguageEncoder
from policies.tokenizer import ActionTokenizer
from policies.vla_model.modeling import VLAModel
from vla.run.directory import RunDirectory
from vla.run.precision import amp_dtype
from vla.run.steps import Job, Outcome, run_steps, tensorboard
from vla.train import distributed
from vla.train.config import TrainConfig
from vla.train.data import dataset_contract, fit_action_tokenizer, lr_lambda
from vla.train.paraphrase import Paraphraser
from vla.train.step import ActionStep
from vla.train.validation import check_in_sim


@dataclass
class Start:
    """What a run trains, and how its checkpoint is written."""

    model: torch.nn.Module  # parameters with requires_grad=False stay as they are
    tokenizer: ActionTokenizer
    contract: ActionContract
    language: LanguageEncoder
    save: Callable[[Path], None]  # writes the policy part of RUN/checkpoint
    summary: dict = field(default_factory=dict)  # added to summary.json


# (config, checkpoint to resume or None, device) -> Start; called after seeding.
Builder = Callable[[TrainConfig, Path | None, torch.device], Start]


def from_scratch(cfg: TrainConfig, resume_dir: Path | None, dev: torch.device) -> Start:
    """A new model of `cfg.size`, with a tokenizer fitted on `cfg.data` (or the run's
    checkpoint when resuming)."""
    contract = dataset_contract(cfg.data)
    mcfg = cfg.model_config(len(contract.state_names), len(contract.action_names))
    if resume_dir is not None:
        model, info = load_model(resume_dir)
        tokenizer, contract, mcfg = info["tokenizer"], info["contract"], model.cfg
        language_width = info["config"]["language_width"]
    else:
        tokenizer, stats = fit_action_tokenizer(cfg.data, mcfg.n_bins, cfg.tokenizer_mode,
                                                contract.action_names)
        contract = dataclasses.replace(contract, chunk_length=mcfg.chunk_length,
                                       normalization=stats)
    language = LanguageEncoder(mcfg.language_model, mcfg.language_max_tokens, dev)
    loaded = {}
    if resume_dir is None:
        language_width = language.width
        model = VLAModel(mcfg, language_width)
        model.state_mean.copy_(torch.tensor(contract.normalization["state_mean"]))
        model.state_std.copy_(torch.tensor(contract.normalization["state_std"]))
        if cfg.init_from:
            from policies.grounding import init_from

            loaded = init_from(model, cfg.init_from)
    return Start(model, tokenizer, contract, language,
                 save=lambda d: save_pretrained(d, model, tokenizer, contract, language_width),
                 summary=loaded)


def train(cfg: TrainConfig, out: str, resume: bool = False, progress: bool | None = None,
          device: str = "auto", stop_after: int | None = None,
          start: Builder = from_scratch) -> dict:
    """Train to `cfg.steps`; `stop_after` ends this process early (after a checkpoint) at
    that step, e.g. to train in slices of a time budget and continue with `resume`.
    `start` builds what is trained (default: a new model, `from_scratch`)."""
    run = RunDirectory(out, resume, main=os.environ.get("RANK", "0") == "0")
    rank, world = distributed.setup()
    dev = distributed.device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + rank)

    begin = start(cfg, run.resume_from, dev)
    model = begin.model
    model.to(dev).train()
    optimizer = torch.optim.AdamW(model.optimizer_groups(cfg.weight_decay), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lr_lambda(cfg.warmup_steps, cfg.steps))
    generators = {"augment": torch.Generator().manual_seed(cfg.seed * 7919 + rank)}
    paraphrase = Paraphraser(cfg.paraphrase)
    first = run.load_state(optimizer, scheduler, generators) if resume else 0
    ddp_model = distributed.wrap(model, dev)
    amp = amp_dtype(cfg.amp, dev)
    step = ActionStep(cfg, begin, ddp_model, optimizer, scheduler, dev, amp, rank, world,
                      generators["augment"], first, paraphrase)
    run.write_config("train", cfg)
    writer = tensorboard(run.path / "tb") if run.main else None

    def check(at: int, tb) -> None:  # the in-sim check during training
        if run.main and cfg.eval_every and at % cfg.eval_every == 0 and at < cfg.steps:
            check_in_sim(begin, dev, cfg, tb, at)

    job = Job("train", cfg.steps, step, begin.save, optimizer, scheduler, generators, cfg,
              cfg.log_every, cfg.checkpoint_every,
              samples_per_step=cfg.batch_size * cfg.grad_accum * world, after_step=check)
    outcome = run_steps(job, run, first, stop_after, progress, writer)
    summary = _summary(cfg, begin, step, outcome, run, dev, amp, world, paraphrase)
    if run.main:
        # Written before the final check too: a check that fails must not lose the record
        # of a finished training run.
        (run.path / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        if outcome.step == cfg.steps and cfg.eval_episodes > 0:
            summary["eval"] = check_in_sim(begin, dev, cfg, writer, outcome.step,
                                           report_dir=run.path / "eval")
            (run.path / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        writer.close()
    distributed.cleanup()
    return summary


def _summary(cfg: TrainConfig, begin: Start, step: ActionStep, outcome: Outcome,
             run: RunDirectory, dev, amp, world: int, paraphrase: Paraphraser) -> dict:
    """summary.json: what the run did and what it cost."""
    seconds, model = outcome.seconds, begin.model
    summary = {"steps": outcome.step, "final_loss": outcome.scalars.get("loss", float("nan")),
               "seconds": seconds,
               "samples_per_s": outcome.samples / seconds if seconds else None,
               "steady_samples_per_s": outcome.steady_samples_per_s,
               "frames": step.frames, "checkpoint": str(run.checkpoint), "world_size": world,
               "device": str(dev),
               "amp": str(amp).replace("torch.", "") if amp else "fp32",
               "trainable_parameters": sum(p.numel() for p in model.parameters()
                                           if p.requires_grad),
               **step.oversampled, **begin.summary}
    if step.grounding is not None:
        summary.update(grounding_scenes=len(step.grounding),
                       final_grounding_loss=outcome.scalars.get("grounding_loss",
                                                                float("nan")))
    if step.token_weight is not None:
        summary["final_weighted_loss"] = outcome.scalars.get("weighted_loss", float("nan"))
    if cfg.paraphrase > 0:  # how many instructions this process re-worded, of how many
        summary["paraphrased"] = {"reworded": paraphrase.reworded, "of": paraphrase.drawn}
    if world > 1:  # every replica must hold the same weights: DDP trained one model
        summary["replicas_identical"] = distributed.replicas_identical(model)
    return summary
