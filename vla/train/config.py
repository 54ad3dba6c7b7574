"""`TrainConfig`: one YAML file in configs/ per recipe, overridable on the command line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from policies.config import SIZES, ModelConfig
from policies.dataclass_io import from_dict


@dataclass
class TrainConfig:
    data: list[str] = field(default_factory=list)  # dataset directories
    size: str = "small"  # tiny | small | base: defaults for `model`
    model: dict = field(default_factory=dict)  # ModelConfig overrides
    steps: int = 6000
    batch_size: int = 64
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    seed: int = 0
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
    augment: bool = True
    shift_pixels: int = 6  # random shift (pad + crop) in pixels of the model's input
    brightness: float = 0.15  # +- relative; no hue change: colour words must keep meaning
    contrast: float = 0.15
    log_every: int = 20
    checkpoint_every: int = 500
    eval_every: int = 0  # 0 = only at the end
    eval_episodes: int = 5  # per task, split L1, during training
    eval_tasks: list[str] = field(default_factory=list)  # default: the datasets' env ids
    # auto: bf16 autocast on CUDA and on CPUs with native bf16 | bf16 (always) | off
    # Start the new model's weights from a checkpoint by name: `vla pretrain`'s grounding
    # checkpoint (stem + keypoints) or a policy. "" = random initialisation.
    init_from: str = ""
    # Captioned scenes (`vla pretrain`'s RUN/scenes): keep the grounding loss on beside the
    # action loss (co-training), so words the demonstrations never show stay grounded.
    grounding_data: str = ""
    grounding_weight: float = 0.5
    grounding_batch: int = 32
    # Probability that a training instruction is re-worded from vla/train/paraphrase.py's
    # bank (same task and words, other phrasing); 0 = the demonstrations' own words.
    paraphrase: float = 0.0
    amp: str = "auto"
    threads: int = 0  # torch CPU threads; 0 = torch's default

    def validate(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size={self.size!r}; expected one of {list(SIZES)}")
        for name in ("steps", "batch_size", "grad_accum", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected at least 1")
        if self.tokenizer_mode not in ("uniform", "quantile"):
            raise ValueError(f"tokenizer_mode={self.tokenizer_mode!r}; expected uniform or "
                             f"quantile")
        if not 0.0 <= self.paraphrase <= 1.0:
            raise ValueError(f"paraphrase={self.paraphrase!r}; expected a probability in [0, 1]")
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"amp={self.amp!r}; expected auto, bf16 or off")
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
        self.model_config(state_dim=1, action_dim=1)  # fail early on bad model keys

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

    def model_config(self, state_dim: int, action_dim: int) -> ModelConfig:
        return build_model_config(self.size, self.model, state_dim, action_dim)


def _check_names(key: str, mapping: dict, action_names: list[str]) -> None:
    unknown = sorted(set(mapping) - set(action_names))
    if unknown:
        raise ValueError(f"{key} names {unknown}; the data's actions are {list(action_names)}")


def build_model_config(size: str, overrides: dict, state_dim: int,
                       action_dim: int) -> ModelConfig:
    """A `size`'s defaults, then `model.*` overrides (errors name the key)."""
    merged = {**SIZES[size], **overrides, "state_dim": state_dim, "action_dim": action_dim}
    return from_dict(ModelConfig, merged, prefix="model.")
