"""`RunConfig`: the settings every training run shares (`vla train`, `vla finetune`,
`vla dagger`, `vla pretrain`), and `NewModel`'s: which model a run builds from nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from policies.dataclass_io import from_dict
from policies.vla_model.configuration import SIZES, ModelConfig, ModelSettings, settings_overrides

AMP = ("auto", "bf16", "off")


@dataclass
class RunConfig:
    seed: int = 0  # every random draw of the run follows from it
    steps: int = 6000  # optimizer steps
    batch_size: int = 64  # samples per optimizer step (per process under DDP)
    lr: float = 3e-4  # AdamW's peak learning rate
    weight_decay: float = 0.01  # AdamW's, on matrices only
    warmup_steps: int = 200  # linear warm-up, then cosine decay to 5% at the last step
    # Image jitter, +- relative; no hue change: colour words must keep their meaning.
    brightness: float = 0.15
    contrast: float = 0.15
    log_every: int = 20  # TensorBoard scalars, and a step line when output is a file
    checkpoint_every: int = 500  # steps between checkpoints (and one at the last step)
    # auto: bf16 autocast on CUDA and on CPUs with native bf16 | bf16 (always) | off
    amp: str = "auto"
    threads: int = 0  # torch CPU threads; 0 = torch's default

    def validate(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected at least 1")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr={self.lr}; expected a positive learning rate")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps={self.warmup_steps}; expected 0 or more")
        if self.amp not in AMP:
            raise ValueError(f"amp={self.amp!r}; expected one of {', '.join(AMP)}")


@dataclass
class NewModel:
    """A model built from nothing: its size, settings and optional starting weights."""

    size: str = "small"  # tiny | small | base: the defaults of `model`
    # ModelConfig keys that differ from the size's defaults (e.g. model.keypoint_groups=4)
    model: ModelSettings = field(default_factory=ModelSettings)
    # Start the new model's weights from a checkpoint by name: `vla pretrain`'s grounding
    # checkpoint (stem + keypoints) or a policy. "" = random initialisation.
    init_from: str = ""

    def validate(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size={self.size!r}; expected one of {list(SIZES)}")

    def model_config(self, state_dim: int, action_dim: int) -> ModelConfig:
        return build_model_config(self.size, self.model, state_dim, action_dim)


def build_model_config(size: str, settings, state_dim: int, action_dim: int) -> ModelConfig:
    """A `size`'s defaults, then the settings `model.*` sets (errors name the key)."""
    merged = {**SIZES[size], **settings_overrides(settings), "state_dim": state_dim,
              "action_dim": action_dim}
    return from_dict(ModelConfig, merged, prefix="model.")
