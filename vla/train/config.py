"""The configs of runs that train a policy on demonstrations: `PolicyTrainingConfig`
(what `vla train`, `vla finetune` and `vla dagger` share) and `TrainConfig` (`vla train`:
a new model). One YAML file in configs/ per recipe, overridable on the command line;
docs/config-keys.md lists every key."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vla.run.config import NewModel, RunConfig


@dataclass
class PolicyTrainingConfig(RunConfig):
    data: list[str] = field(default_factory=list)  # dataset directories
    grad_accum: int = 1  # micro-batches per optimizer step
    num_workers: int = 2  # DataLoader processes
    # Decode every frame into memory once (~50 KB per 128 px frame) instead of per epoch;
    # with it, num_workers 0 leaves every core to the model.
    preload: bool = False
    tokenizer_mode: str = "uniform"  # uniform | quantile
    label_sigma_bins: float = 2.0  # soft targets over neighbouring bins; 0 = plain CE
    # Weight of each action dimension's tokens in the action loss, by the contract's name
    # (e.g. {dyaw: 5.0}); unnamed dimensions weigh 1. For an action the expert takes on
    # few frames, such as turning the hand near the block, whose share of the loss is
    # otherwise too small to learn (docs/RESULTS.md, "Weighting the turn").
    action_loss_weights: dict = field(default_factory=dict)
    # Frames whose first action moves a named dimension (|a| > 0.05 of the largest step)
    # appear this many times per epoch (e.g. {dyaw: 10}): a rare action is then seen
    # often enough to be learned (docs/RESULTS.md, "Is the turn's direction in the pixels?").
    oversample: dict = field(default_factory=dict)
    augment: bool = True  # random shift, brightness and contrast of training frames
    shift_pixels: int = 6  # random shift (pad + crop) in pixels of the model's input
    eval_every: int = 0  # 0 = only at the end
    eval_episodes: int = 5  # per task, split L1, during training
    eval_tasks: list[str] = field(default_factory=list)  # default: the datasets' env ids
    # Captioned scenes (`vla pretrain`'s RUN/scenes): keep the grounding loss on beside the
    # action loss (co-training), so words the demonstrations never show stay grounded.
    grounding_data: str = ""
    grounding_weight: float = 0.5  # the grounding loss's weight beside the action loss
    grounding_batch: int = 32  # captioned scenes per step
    # Probability that a training instruction is re-worded from vla/train/paraphrase.py's
    # bank (same task and words, other phrasing); 0 = the demonstrations' own words.
    paraphrase: float = 0.0

    def validate(self) -> None:
        super().validate()
        if self.grad_accum < 1:
            raise ValueError(f"grad_accum={self.grad_accum}; expected at least 1")
        if self.tokenizer_mode not in ("uniform", "quantile"):
            raise ValueError(f"tokenizer_mode={self.tokenizer_mode!r}; expected uniform or "
                             f"quantile")
        if not 0.0 <= self.paraphrase <= 1.0:
            raise ValueError(f"paraphrase={self.paraphrase!r}; expected a probability in [0, 1]")
        if self.grounding_data and (self.grounding_weight <= 0 or self.grounding_batch < 1):
            raise ValueError(f"grounding_weight={self.grounding_weight}, grounding_batch="
                             f"{self.grounding_batch}; expected a positive weight and batch "
                             f"with grounding_data")
        for key, example in (("action_loss_weights", "action_loss_weights.dyaw=10"),
                             ("oversample", "oversample.dyaw=10")):
            if not isinstance(getattr(self, key), dict):
                raise ValueError(f"{key}={getattr(self, key)!r}; expected a mapping of action "
                                 f"name to value, e.g. {example}")
        for name, weight in self.action_loss_weights.items():
            if (not isinstance(weight, (int, float)) or isinstance(weight, bool)
                    or not math.isfinite(weight) or weight < 0):
                raise ValueError(f"action_loss_weights.{name}={weight!r}; expected a finite "
                                 f"number >= 0")
        for name, times in self.oversample.items():
            if not isinstance(times, int) or isinstance(times, bool) or times < 1:
                raise ValueError(f"oversample.{name}={times!r}; expected a whole number >= 1")

    def token_weights(self, action_names: list[str], chunk_length: int):
        """Loss weight per action token (K * A,), token k * A + a being step k's dimension
        a (the order of `tokens.flatten(1)` on (B, K, A)); None when every weight is 1.
        Names the contract lacks are errors."""
        import torch  # here, so that reading a config does not load torch

        _check_names("action_loss_weights", self.action_loss_weights, action_names)
        per_dim = [float(self.action_loss_weights.get(n, 1.0)) for n in action_names]
        if all(w == 1.0 for w in per_dim):
            return None
        return torch.tensor(per_dim).repeat(chunk_length)

    def oversample_times(self, action_names: list[str]) -> dict[int, int]:
        """Action index -> how many times its moving frames appear per epoch."""
        _check_names("oversample", self.oversample, action_names)
        return {action_names.index(n): int(t) for n, t in self.oversample.items()}


@dataclass
class TrainConfig(PolicyTrainingConfig, NewModel):
    """`vla train`: a new policy of `size` (and `model.*` settings) on `data`."""

    def validate(self) -> None:
        PolicyTrainingConfig.validate(self)
        NewModel.validate(self)
        self.model_config(state_dim=1, action_dim=1)  # fail early on bad model settings


def _check_names(key: str, mapping: dict, action_names: list[str]) -> None:
    unknown = sorted(set(mapping) - set(action_names))
    if unknown:
        raise ValueError(f"{key} names {unknown}; the data's actions are {list(action_names)}")
