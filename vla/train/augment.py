"""Image augmentation on uint8 batches: random shift and brightness/contrast jitter.

Colour hue is never changed: instructions name objects by colour. Randomness comes
from the generator passed in, so a resumed run draws the same augmentations.

The whole batch is augmented with tensor ops (no Python loop over samples): on 2 CPU
cores a per-sample crop loop cost as much as a tenth of a training step.
"""

from __future__ import annotations

import torch


def augment_images(images: torch.Tensor, generator: torch.Generator, shift: int,
                   brightness: float, contrast: float) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> uint8 (B, H, W, 3)."""
    b, h, w, _ = images.shape
    x = images
    if shift > 0:
        # DrQ-style shift: replicate-pad by `shift`, crop at a random offset per sample.
        # Clamping the gather indices into the image is exactly replicate padding.
        offsets = torch.randint(0, 2 * shift + 1, (b, 2), generator=generator) - shift
        rows = (offsets[:, :1] + torch.arange(h)).clamp_(0, h - 1)  # (B, H)
        cols = (offsets[:, 1:] + torch.arange(w)).clamp_(0, w - 1)  # (B, W)
        batch = torch.arange(b)[:, None, None]
        x = x[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, 3)
    if brightness > 0 or contrast > 0:
        gain = 1 + (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * contrast
        bias = (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * brightness * 255
        xf = x.float()
        mean = xf.mean(dim=(1, 2, 3), keepdim=True)
        x = ((xf - mean) * gain + mean + bias).clamp_(0, 255).round_().to(torch.uint8)
    return x.contiguous()
