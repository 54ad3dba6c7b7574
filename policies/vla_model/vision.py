"""Vision encoder: a ViT from transformers, from scratch or from a pretrained backbone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.vla_model.configuration import ModelConfig

# Pretrained backbones expect ImageNet statistics; our from-scratch ViT uses 0.5/0.5.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# The from-scratch ViT's attention. On 2 CPU cores eager attention trains the small model
# 10-15% faster than SDPA, whose CPU flash kernel is slow backwards over 36 tokens
# (benchmarks/train_throughput.py); the weights are the same either way.
VIT_ATTENTION = "eager"
# Contiguous NCHW frames into the encoder: the permuted uint8 view is channels-last, where
# the conv stem's GroupNorm backward cost ~10% of a CPU training step.
INPUT_FORMAT = torch.contiguous_format


class ConvStem(nn.Module):
    """Three 3x3 convolutions (two of stride 2) in front of the ViT:
    (B, 3, H, W) -> (B, C, H/4, W/4).

    A ViT trained from scratch on a few thousand demonstrations learns slowly to see
    small objects through a single linear patch projection; a convolutional stem gives
    it locality and translation equivariance for free ("Early convolutions help
    transformers see better", Xiao et al. 2021). The ViT then patchifies the feature
    map with patch_size / 4, so the number of image tokens does not change.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.layers = nn.Sequential(
            nn.Conv2d(3, half, 3, stride=2, padding=1), nn.GroupNorm(8, half), nn.GELU(),
            nn.Conv2d(half, channels, 3, stride=2, padding=1), nn.GroupNorm(8, channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class VisionEncoder(nn.Module):
    """uint8 images (B, H, W, 3) -> patch features (B, N, width).

    With `cfg.vision_backbone` set, the backbone is `AutoModel.from_pretrained(name)` the
    first time (`pretrained=True`); a saved checkpoint rebuilds it from the backbone's
    config stored in ours (`backbone_config`), and its weights come from our safetensors.
    """

    def __init__(self, cfg: ModelConfig, backbone_config: dict | None = None,
                 pretrained: bool = True) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel, ViTConfig, ViTModel

        self.stem: nn.Module | None = None
        if cfg.vision_backbone:
            if pretrained:
                self.model = AutoModel.from_pretrained(cfg.vision_backbone)
            else:
                config = AutoConfig.for_model(**backbone_config)
                self.model = AutoModel.from_config(config)
            mean, std = IMAGENET_MEAN, IMAGENET_STD
            self.input_size = int(getattr(self.model.config, "image_size", cfg.image_size))
        else:
            # With the conv stem the ViT sees a (C, H/4, W/4) feature map, not pixels.
            conv = cfg.vision_stem == "conv"
            self.stem = ConvStem(cfg.stem_channels) if conv else None
            scale = 4 if conv else 1
            config = ViTConfig(
                image_size=cfg.image_size // scale, patch_size=cfg.patch_size // scale,
                num_channels=cfg.stem_channels if conv else 3,
                hidden_size=cfg.vision_width, num_hidden_layers=cfg.vision_layers,
                num_attention_heads=cfg.vision_heads, intermediate_size=4 * cfg.vision_width,
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                attn_implementation=VIT_ATTENTION,
            )
            self.model = ViTModel(config, add_pooling_layer=False)
            mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
            self.input_size = cfg.image_size
        self.width = int(self.model.config.hidden_size)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def backbone_config(self) -> dict:
        return self.model.config.to_dict()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)[0]

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(patch features (B, N, width), conv stem map (B, C, H/4, W/4) or None)."""
        x = normalized_pixels(images, self.input_size, self.mean, self.std)
        stem_map = None
        if self.stem is not None:
            x = stem_map = self.stem(x)  # (B, C, H/4, W/4) with the conv stem
        return self.model(pixel_values=x).last_hidden_state, stem_map

    def stem_map(self, images: torch.Tensor) -> torch.Tensor:
        """The conv stem's map (B, C, H/4, W/4) alone: what the keypoints read (the
        grounding loss needs no ViT)."""
        return self.stem(normalized_pixels(images, self.input_size, self.mean, self.std))


class StemEncoder(nn.Module):
    """The conv stem without the ViT: the vision half of the grounding path that
    `vla pretrain` trains (its weights load into VisionEncoder.stem by name)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.stem = ConvStem(cfg.stem_channels)
        self.input_size = cfg.image_size
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), 0.5), persistent=False)

    def stem_map(self, images: torch.Tensor) -> torch.Tensor:
        return self.stem(normalized_pixels(images, self.input_size, self.mean, self.std))


def normalized_pixels(images: torch.Tensor, size: int, mean: torch.Tensor,
                      std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, size, size)."""
    x = images.permute(0, 3, 1, 2).contiguous(memory_format=INPUT_FORMAT)  # (B, 3, H, W)
    x = x.to(mean.dtype) / 255.0  # in [0, 1]
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
    return (x - mean) / std
