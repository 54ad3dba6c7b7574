"""`train()`: the training loop behind `vla train` and `vla finetune` (single process, or
DDP via torchrun).

    RUN/checkpoint/   the latest complete checkpoint (policy, or LoRA adapter, + state for
                      --resume)
    RUN/tb/           TensorBoard logs
    RUN/train_config.yaml, RUN/summary.json

What a run trains comes from a `Start`: the model (with its trainable parameters already
chosen: everything from scratch, a subset or LoRA matrices when fine-tuning), the action
tokenizer and contract it speaks, and how its checkpoint is written. `from_scratch` is
`vla train`'s; vla/train/finetune.py builds the others.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from bridges.contract import ActionContract
from policies.checkpoint import fault_point, load_model, recover, save_pretrained, swap_into_place
from policies.language import LanguageEncoder
from policies.tokenizer import ActionTokenizer
from policies.vla_model import VLAModel, masked_mean
from vla.train import distributed
from vla.train.augment import augment_images
from vla.train.config import TrainConfig
from vla.train.data import (
    EpochSampler,
    collate,
    dataset_contract,
    dataset_env_ids,
    fit_action_tokenizer,
    frame_dataset,
    lr_lambda,
    oversampled,
)
from vla.train.paraphrase import Paraphraser
from vla.train.state import load_train_state, save_train_state


@dataclass
class Start:
    """What a run trains, and how its checkpoint is written."""

    model: torch.nn.Module  # parameters with requires_grad=False stay as they are
    tokenizer: ActionTokenizer
    contract: ActionContract
    language: LanguageEncoder
    save: Callable[[Path], None]  # writes the policy part of RUN/checkpoint
    summary: dict = field(default_factory=dict)  # added to summary.json


# Steps excluded from the steady-state throughput in summary.json (compilation, warm-up).
STEADY_AFTER = 3

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
    run = Path(out)
    ckpt_dir = run / "checkpoint"
    if run.is_dir() and os.environ.get("RANK", "0") == "0":
        recover(ckpt_dir)  # a kill during a save may have left staging directories
    if resume and not (ckpt_dir / "train_state.json").is_file():
        raise FileNotFoundError(f"--resume: {ckpt_dir} holds no resumable checkpoint")
    if not resume and ckpt_dir.exists():
        raise FileExistsError(f"{str(run)!r} already holds a checkpoint; pass --resume to "
                              f"continue it or choose another --out")
    rank, world = distributed.setup()
    dev = distributed.device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + rank)

    begin = start(cfg, ckpt_dir if resume else None, dev)
    model, tokenizer, contract, language = (begin.model, begin.tokenizer, begin.contract,
                                            begin.language)
    mcfg = model.cfg
    token_weight = cfg.token_weights(list(contract.action_names), mcfg.chunk_length)
    token_weight = None if token_weight is None else token_weight.to(dev)
    oversample = cfg.oversample_times(list(contract.action_names))
    model.to(dev).train()

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in trainable if not (p.ndim >= 2 and "embed" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lr_lambda(cfg.warmup_steps, cfg.steps))
    augment_gen = torch.Generator().manual_seed(cfg.seed * 7919 + rank)
    paraphrase = Paraphraser(cfg.paraphrase)
    step = 0
    if resume:
        step = load_train_state(ckpt_dir, optimizer, scheduler, {"augment": augment_gen})["step"]
    ddp_model = distributed.wrap(model, dev)

    # Frames are resized to what the vision encoder sees when they are read (once, when
    # preloaded), so augmentation and the encoder never touch the larger stored frames.
    dataset = frame_dataset(cfg.data, mcfg.chunk_length, mcfg.cameras, cfg.preload,
                            image_size=model.vision.input_size)
    n_frames = len(dataset)
    dataset, n_repeated = oversampled(dataset, oversample)
    if oversample and rank == 0:
        print(f"oversample {cfg.oversample}: {n_repeated:,} of {n_frames:,} frames repeated; "
              f"an epoch is {len(dataset):,} frames", file=sys.stderr, flush=True)
    per_step = cfg.batch_size * cfg.grad_accum
    sampler = EpochSampler(len(dataset), cfg.seed, rank, world, start=step * per_step)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                        num_workers=cfg.num_workers, collate_fn=collate,
                        persistent_workers=cfg.num_workers > 0,
                        # Its own generator: drawing the workers' base seed from the global
                        # RNG would shift dropout after a resume.
                        generator=torch.Generator().manual_seed(cfg.seed))
    batches = iter(loader)
    grounding = _grounding_data(cfg, mcfg, world)
    main = rank == 0
    if main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "train_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg)))
    writer = _tensorboard(run / "tb") if main else None
    amp_dtype = _amp_dtype(cfg.amp, dev)
    bar = _progress(cfg.steps, step, main, progress)
    a_dim = len(contract.action_names)
    t_start, samples, loss_value = time.perf_counter(), 0, float("nan")
    grounding_value = weighted_value = float("nan")

    def save() -> None:
        """Weights, tokenizer, contract and train state, staged beside the checkpoint and
        swapped in together: a kill at any point leaves the previous one, resumable."""
        if not main:
            return
        staging = ckpt_dir.with_name(f".{ckpt_dir.name}.staging-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        begin.save(staging)
        fault_point("checkpoint:weights")
        save_train_state(staging, optimizer, scheduler, {"augment": augment_gen}, step,
                         {"config": dataclasses.asdict(cfg)})
        fault_point("checkpoint:state")
        swap_into_place(staging, ckpt_dir)

    last = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    first_step, t_steady, samples_steady = step, None, 0
    while step < last:
        optimizer.zero_grad(set_to_none=True)
        total, grounding_total, weighted_total = 0.0, 0.0, 0.0
        for _ in range(cfg.grad_accum):
            batch = next(batches)
            images = {c: _maybe_augment(x, cfg, augment_gen).to(dev)
                      for c, x in batch["images"].items()}
            tokens = torch.from_numpy(tokenizer.encode(batch["action"].numpy()))
            tokens = tokens.flatten(1).to(dev)  # (B, K * A)
            token_mask = batch["action_mask"].repeat_interleave(a_dim, dim=1).to(dev)
            lang, lang_mask = language.encode(paraphrase(batch["instruction"], augment_gen))
            with torch.autocast(dev.type, dtype=amp_dtype or torch.bfloat16,
                                enabled=amp_dtype is not None):
                logits = ddp_model(images, batch["state"].to(dev), lang, lang_mask, tokens)
            ce = model.token_losses(logits, tokens, cfg.label_sigma_bins)  # (B, K * A)
            loss = masked_mean(ce, token_mask, token_weight) / cfg.grad_accum
            # Logged: the plain action loss, comparable across runs whatever the weights.
            if token_weight is None:
                total += loss.item()
            else:
                weighted_total += loss.item()
                total += masked_mean(ce.detach(), token_mask).item() / cfg.grad_accum
            if grounding is not None:  # co-training: the keypoints keep finding named things
                g_loss = _grounding_loss(model, grounding, cfg, language, dev, amp_dtype,
                                         augment_gen)
                grounding_total += g_loss.item() / cfg.grad_accum
                loss = loss + cfg.grounding_weight * g_loss / cfg.grad_accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        samples += per_step * world
        loss_value, grounding_value, weighted_value = total, grounding_total, weighted_total
        if step == first_step + STEADY_AFTER:  # compilation and warm-up are behind us
            t_steady, samples_steady = time.perf_counter(), samples
        if main:
            rate = samples / (time.perf_counter() - t_start)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", samples_s=f"{rate:.0f}")
            if step % cfg.log_every == 0 or step == cfg.steps:
                writer.add_scalar("train/loss", loss_value, step)
                if grounding is not None:
                    writer.add_scalar("train/grounding_loss", grounding_value, step)
                if token_weight is not None:  # what the weighted loss trains on
                    writer.add_scalar("train/weighted_loss", weighted_value, step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                writer.add_scalar("train/samples_per_s", rate, step)
        if step % cfg.checkpoint_every == 0 or step == last:
            save()
        if main and cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
            _evaluate_during_training(model, tokenizer, contract, language, dev, cfg, writer,
                                      step)
    bar.close()
    seconds = time.perf_counter() - t_start
    summary = {"steps": step, "final_loss": loss_value, "seconds": seconds,
               "samples_per_s": samples / seconds if seconds else None,
               "steady_samples_per_s": _rate(samples - samples_steady, t_steady),
               "frames": n_frames, "checkpoint": str(ckpt_dir), "world_size": world,
               "device": str(dev), "amp": str(amp_dtype).replace("torch.", "") if amp_dtype
               else "fp32",
               "trainable_parameters": sum(p.numel() for _, p in trainable),
               **({"oversampled_frames": n_repeated, "epoch_frames": len(dataset)}
                  if oversample else {}),
               **begin.summary}
    if grounding is not None:
        summary.update(grounding_scenes=len(grounding), final_grounding_loss=grounding_value)
    if token_weight is not None:
        summary["final_weighted_loss"] = weighted_value
    if cfg.paraphrase > 0:  # how many instructions this process re-worded, of how many
        summary["paraphrased"] = {"reworded": paraphrase.reworded, "of": paraphrase.drawn}
    if world > 1:  # every replica must hold the same weights: DDP trained one model
        summary["replicas_identical"] = distributed.replicas_identical(model)
    if main:
        # Written before the final check too: a check that fails must not lose the record
        # of a finished training run.
        (run / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        if step == cfg.steps and cfg.eval_episodes > 0:
            summary["eval"] = _evaluate_during_training(model, tokenizer, contract, language,
                                                        dev, cfg, writer, step,
                                                        report_dir=run / "eval")
            (run / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        writer.close()
    distributed.cleanup()
    return summary


def _grounding_data(cfg: TrainConfig, mcfg, world: int):
    """The captioned scenes of `cfg.grounding_data` in memory, or None."""
    if not cfg.grounding_data:
        return None
    from policies.grounding import check_groundable
    from vla.pretrain.data import GroundingData

    check_groundable(mcfg)
    if world > 1:
        raise ValueError("grounding_data (co-training) runs in a single process; leave it "
                         "out under torchrun")
    return GroundingData(cfg.grounding_data, mcfg.image_size, mcfg.image_size // 4)


def _grounding_loss(model, data, cfg: TrainConfig, language, dev, amp_dtype, gen):
    """The grounding loss (policies/grounding.py) on a batch of captioned scenes."""
    from policies.grounding import grounding_heat, grounding_loss

    batch = data.batch(cfg.grounding_batch, gen)
    images = batch["images"]
    if cfg.augment:  # brightness and contrast only: a shift would move the targets
        images = augment_images(images, gen, 0, cfg.brightness, cfg.contrast)
    images = images.to(dev)
    lang, lang_mask = language.encode(batch["instruction"])
    with torch.autocast(dev.type, dtype=amp_dtype or torch.bfloat16,
                        enabled=amp_dtype is not None):
        heat = grounding_heat(model, images, lang, lang_mask)
    return grounding_loss(heat, batch["targets"].to(dev), batch["absent"].to(dev),
                          model.cfg.keypoint_groups)


def _rate(samples: int, since: float | None) -> float | None:
    if since is None or samples == 0:
        return None
    return samples / (time.perf_counter() - since)


def _amp_dtype(amp: str, dev: torch.device) -> torch.dtype | None:
    """bf16 autocast: "auto" uses it on CUDA and on CPUs with native bf16 (AVX512-BF16 or
    AMX), where it trained the small model 1.4x faster than fp32 (benchmarks/
    train_throughput.py); "bf16" forces it."""
    if amp == "off":
        return None
    if amp == "bf16" or dev.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_native_bf16() else None


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: stay in fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _maybe_augment(images: torch.Tensor, cfg: TrainConfig, gen: torch.Generator):
    if not cfg.augment:
        return images
    return augment_images(images, gen, cfg.shift_pixels, cfg.brightness, cfg.contrast)


def _evaluate_during_training(model, tokenizer, contract, language, dev, cfg, writer, step,
                              report_dir: Path | None = None):
    """Success on the validation stream; with `report_dir`, the stage-by-stage report is
    written there (`vla eval`'s results.json, results.md, stages.md) and printed."""
    import sys

    from policies.vla_policy import VLAPolicy
    from vla.eval.report import markdown_table, stage_table, write_report
    from vla.eval.run import evaluate

    env_ids = cfg.eval_tasks or dataset_env_ids(cfg.data)
    simulated = _simulated(env_ids)
    if len(simulated) < len(env_ids):  # recorded on a robot, or imported: no sim to judge
        others = sorted(set(env_ids) - set(simulated))
        print(f"in-sim check: skipped for {', '.join(others)} (no simulator env of that "
              f"name; judge this policy on its robot)", file=sys.stderr)
    if not simulated:
        return None
    env_ids = simulated
    policy = VLAPolicy.from_model(model, tokenizer, contract, language, dev)
    model.eval()
    try:  # L1 for the training tasks; L4 for the held-out one (a new task to fine-tune on)
        result = evaluate(policy, env_ids, ["L1", "L4"], cfg.eval_episodes, progress=False,
                          mode="val")
    finally:
        model.train()
    for key, cell in result["cells"].items():
        writer.add_scalar(f"eval/{key}", cell["success"], step)
    for split, summary in result["splits"].items():
        writer.add_scalar(f"eval/{split}_mean", summary["success"], step)
    if report_dir is not None:
        write_report(result, report_dir)
        print(markdown_table(result) + "\n" + stage_table(result), file=sys.stderr)
    return result["splits"]


def _simulated(env_ids: list[str]) -> list[str]:
    """The env ids that name a registered simulator env."""
    import gymnasium

    import sims  # noqa: F401  (registers the sims/ ids)

    return [e for e in env_ids if e in gymnasium.registry]


def _tensorboard(path: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(path))


def _progress(total: int, initial: int, main: bool, progress: bool | None,
              desc: str = "train"):
    """A step bar on rank 0; `progress=None` shows it only on a terminal (a log file
    would fill with carriage-return updates)."""
    from tqdm import tqdm

    disable = (not main) or (progress is False) or (progress is None and not _is_tty())
    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=disable,
                dynamic_ncols=True)


def _is_tty() -> bool:
    import sys

    return sys.stderr.isatty() or os.environ.get("VLA_PROGRESS") == "1"
