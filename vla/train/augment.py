"""Image augmentation on uint8 batches: random shift and brightness/contrast jitter.

Colour hue is never changed: instructions name objects by colour. Randomness comes
from the generator passed in, so a resumed run draws the same augmentations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_images(images: torch.Tensor, generator: torch.Generator, shift: int,
                   brightness: float, contrast: float) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> uint8 (B, H, W, 3)."""
    b, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2).float()  # (B, 3, H, W)
    if shift > 0:
        # Replicate-pad then crop at a random offset per sample (DrQ-style shift).
        padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
        offsets = torch.randint(0, 2 * shift + 1, (b, 2), generator=generator)
        x = torch.stack([padded[i, :, oy:oy + h, ox:ox + w]
                         for i, (oy, ox) in enumerate(offsets.tolist())])
    if brightness > 0 or contrast > 0:
        gain = 1 + (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * contrast
        bias = (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * brightness * 255
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * gain + mean + bias
    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
