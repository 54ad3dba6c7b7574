"""`ActionStep`: one optimizer step of `vla train` / `vla finetune`: the action-token loss
on a batch of demonstration frames, plus the grounding loss on captioned scenes when
co-training (`grounding_data`)."""

from __future__ import annotations

import sys

import torch
from torch.utils.data import DataLoader

from policies.vla_model.modeling import masked_mean
from policies.vla_model.processor import InputProcessor
from vla.run.precision import autocast
from vla.train.augment import augment_images
from vla.train.config import TrainConfig
from vla.train.data import EpochSampler, collate, frame_dataset, oversampled
from vla.train.paraphrase import Paraphraser


class ActionStep:
    """Callable: one optimizer step; returns {"loss": the plain action loss (comparable
    across runs whatever the weights), "weighted_loss" (with action_loss_weights),
    "grounding_loss" (when co-training)}."""

    def __init__(self, cfg: TrainConfig, begin, ddp_model, optimizer, scheduler,
                 dev: torch.device, amp_dtype, rank: int, world: int,
                 augment_gen: torch.Generator, first_step: int, paraphrase: Paraphraser):
        self.cfg, self.begin, self.ddp_model = cfg, begin, ddp_model
        self.model, self.optimizer, self.scheduler = begin.model, optimizer, scheduler
        self.dev, self.amp_dtype, self.gen = dev, amp_dtype, augment_gen
        self.paraphrase = paraphrase
        self.processor = InputProcessor(begin.language, self.model.cfg.cameras, dev)
        mcfg, names = self.model.cfg, list(begin.contract.action_names)
        weight = cfg.token_weights(names, mcfg.chunk_length)
        self.token_weight = None if weight is None else weight.to(dev)
        self.a_dim = len(names)
        self.batches, self.frames = self._batches(cfg, mcfg, names, rank, world, first_step)
        self.grounding = _grounding_data(cfg, mcfg, world)

    def _batches(self, cfg: TrainConfig, mcfg, names: list[str], rank: int, world: int,
                 first_step: int):
        """An endless iterator over training batches, positioned at `first_step`."""
        # Frames are resized to what the vision encoder sees when they are read (once, when
        # preloaded), so augmentation and the encoder never touch the larger stored frames.
        dataset = frame_dataset(cfg.data, mcfg.chunk_length, mcfg.cameras, cfg.preload,
                                image_size=self.model.vision.input_size)
        n_frames = len(dataset)
        oversample = cfg.oversample_times(names)
        dataset, n_repeated = oversampled(dataset, oversample)
        if oversample and rank == 0:
            print(f"oversample {cfg.oversample}: {n_repeated:,} of {n_frames:,} frames "
                  f"repeated; an epoch is {len(dataset):,} frames", file=sys.stderr,
                  flush=True)
        self.oversampled = ({"oversampled_frames": n_repeated, "epoch_frames": len(dataset)}
                            if oversample else {})
        sampler = EpochSampler(len(dataset), cfg.seed, rank, world,
                               start=first_step * cfg.batch_size * cfg.grad_accum)
        loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                            num_workers=cfg.num_workers, collate_fn=collate,
                            persistent_workers=cfg.num_workers > 0,
                            # Its own generator: drawing the workers' base seed from the
                            # global RNG would shift dropout after a resume.
                            generator=torch.Generator().manual_seed(cfg.seed))
        return iter(loader), n_frames

    def __call__(self) -> dict[str, float]:
        cfg = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        total = grounding_total = weighted_total = 0.0
        for _ in range(cfg.grad_accum):
            ce, token_mask = self._token_losses(next(self.batches))
            loss = masked_mean(ce, token_mask, self.token_weight) / cfg.grad_accum
            if self.token_weight is None:
                total += loss.item()
            else:
                weighted_total += loss.item()
                total += masked_mean(ce.detach(), token_mask).item() / cfg.grad_accum
            if self.grounding is not None:  # co-training: keypoints keep finding named things
                g_loss = self._grounding_loss()
                grounding_total += g_loss.item() / cfg.grad_accum
                loss = loss + cfg.grounding_weight * g_loss / cfg.grad_accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        scalars = {"loss": total}
        if self.grounding is not None:
            scalars["grounding_loss"] = grounding_total
        if self.token_weight is not None:  # what the weighted loss trains on
            scalars["weighted_loss"] = weighted_total
        return scalars

    def _token_losses(self, batch: dict):
        """Per-token cross-entropy (B, K * A) of the batch's actions, and their mask."""
        cfg, dev, begin = self.cfg, self.dev, self.begin
        images = {c: _maybe_augment(x, cfg, self.gen) for c, x in batch["images"].items()}
        tokens = torch.from_numpy(begin.tokenizer.encode(batch["action"].numpy()))
        tokens = tokens.flatten(1).to(dev)  # (B, K * A)
        token_mask = batch["action_mask"].repeat_interleave(self.a_dim, dim=1).to(dev)
        inputs = self.processor(images, batch["state"],
                                self.paraphrase(batch["instruction"], self.gen))
        with autocast(dev, self.amp_dtype):
            logits = self.ddp_model(*inputs, tokens).logits
        return self.model.token_losses(logits, tokens, cfg.label_sigma_bins), token_mask

    def _grounding_loss(self) -> torch.Tensor:
        """The grounding loss (policies/grounding.py) on a batch of captioned scenes."""
        from policies.grounding import grounding_heat, grounding_loss

        cfg, dev = self.cfg, self.dev
        batch = self.grounding.batch(cfg.grounding_batch, self.gen)
        images = batch["images"]
        if cfg.augment:  # brightness and contrast only: a shift would move the targets
            images = augment_images(images, self.gen, 0, cfg.brightness, cfg.contrast)
        lang, lang_mask = self.begin.language.encode(batch["instruction"])
        with autocast(dev, self.amp_dtype):
            heat = grounding_heat(self.model, images.to(dev), lang, lang_mask)
        return grounding_loss(heat, batch["targets"].to(dev), batch["absent"].to(dev),
                              self.model.cfg.keypoint_groups)


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


def _maybe_augment(images: torch.Tensor, cfg: TrainConfig, gen: torch.Generator):
    if not cfg.augment:
        return images
    return augment_images(images, gen, cfg.shift_pixels, cfg.brightness, cfg.contrast)
