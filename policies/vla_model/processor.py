"""Observations -> the model's inputs, one pipeline for training and inference (as openpi's
transforms): images to the device as uint8 (the model normalises them), state as float32,
the instruction through the frozen language encoder. Training hands it augmented frames
and re-worded instructions; a policy hands it what the robot observed. Anything that
changes how the model reads its inputs changes here, for both at once."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from policies.language import LanguageEncoder


class ModelInputs(NamedTuple):
    images: dict[str, torch.Tensor]  # camera -> uint8 (B, H, W, 3), on the device
    state: torch.Tensor  # (B, S) float32, raw units (the model normalises it)
    lang: torch.Tensor  # (B, L, W_lang) token features of the instruction
    lang_mask: torch.Tensor  # (B, L), True = a real token


class InputProcessor:
    def __init__(self, language: LanguageEncoder, cameras: list[str],
                 device: torch.device) -> None:
        self.language, self.cameras, self.device = language, list(cameras), device

    def __call__(self, images: dict[str, torch.Tensor], state: torch.Tensor,
                 instructions: list[str]) -> ModelInputs:
        """A batch already in tensors (a training batch): images camera -> (B, H, W, 3)."""
        lang, lang_mask = self.language.encode(instructions)
        return ModelInputs({c: images[c].to(self.device) for c in self.cameras},
                           state.to(self.device), lang, lang_mask)

    def observations(self, observations: list[dict]) -> ModelInputs:
        """Observations as robots and simulators give them (numpy images, state, text)."""
        images = {c: torch.from_numpy(np.stack([o["images"][c] for o in observations]))
                  for c in self.cameras}
        state = torch.from_numpy(np.stack([np.asarray(o["state"], np.float32)
                                           for o in observations]))
        return self(images, state, [o["instruction"] for o in observations])
