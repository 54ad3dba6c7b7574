"""Language-conditioned spatial keypoints: where in the image are the things the
instruction talks about, as coordinates the trunk can subtract from the hand's position.

    conv stem features (B, C, h, w) --FiLM(instruction)--> 1x1 conv --> K heat maps
    spatial softmax over h x w --> expected (x, y) per map --> (B, K, 2) --MLP--> 1 token

A ViT learns to turn "the red block is in patch (3, 4)" into a metric offset slowly from
a few thousand demonstrations; a spatial softmax (Levine et al. 2016, "End-to-end training
of deep visuomotor policies") hands the trunk image coordinates directly, and FiLM
(Perez et al. 2018, as in RT-1 and BC-Z) lets the instruction choose what the maps look
for. It reads the conv stem's feature map, so it needs `model.vision_stem: conv`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LanguageKeypoints(nn.Module):
    def __init__(self, channels: int, language_width: int, n_keypoints: int,
                 d_model: int) -> None:
        super().__init__()
        self.film = nn.Linear(language_width, 2 * channels)
        nn.init.zeros_(self.film.weight)  # start as the identity: gamma = 0, beta = 0
        nn.init.zeros_(self.film.bias)
        self.heat = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(),
            nn.Conv2d(channels, n_keypoints, 1),
        )
        self.to_token = nn.Sequential(
            nn.Linear(2 * n_keypoints, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )

    def forward(self, feats: torch.Tensor, lang: torch.Tensor,
                lang_mask: torch.Tensor) -> torch.Tensor:
        """feats (B, C, h, w); lang (B, L, W) with mask (B, L) -> one token (B, 1, D)."""
        coords = self.coordinates(feats, lang, lang_mask)  # (B, K, 2)
        return self.to_token(coords.flatten(1).to(feats.dtype)).unsqueeze(1)

    def coordinates(self, feats: torch.Tensor, lang: torch.Tensor,
                    lang_mask: torch.Tensor) -> torch.Tensor:
        """The K expected image coordinates (B, K, 2), x and y in [-1, 1]."""
        weights = lang_mask.to(lang.dtype).unsqueeze(-1)  # (B, L, 1)
        pooled = (lang * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, W)
        gamma, beta = self.film(pooled).chunk(2, dim=-1)  # (B, C) each
        x = feats * (1 + gamma[..., None, None]) + beta[..., None, None]
        heat = self.heat(x)  # (B, K, h, w)
        b, k, h, w = heat.shape
        prob = F.softmax(heat.flatten(2).float(), dim=-1).view(b, k, h, w)
        ys = torch.linspace(-1, 1, h, device=feats.device)
        xs = torch.linspace(-1, 1, w, device=feats.device)
        return torch.stack([(prob.sum(2) * xs).sum(-1),  # expected x (B, K)
                            (prob.sum(3) * ys).sum(-1)], dim=-1)  # (B, K, 2)
