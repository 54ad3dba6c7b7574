"""The VLA model: camera frames + instruction + state -> discretised action tokens.

    tokens = [image patches and keypoints (per camera) | instruction tokens |
              (sentence) | (referent words) | state | action tokens]
                          Transformer trunk (trunk.py)
    logits over n_bins for each of the K * A action tokens (K steps, A dims)

`forward` returns what it computes (`ModelOutput`): the logits and each camera's keypoint
heat maps, which the presence score (policies/presence.py) and the console read.
docs/model.md draws the token layout of the shipped configuration (policies/diagram.py).

Two decoders share the weights' layout:
- parallel: the action positions hold learned queries; one forward pass gives every
  token of the chunk (as RT-1 and OpenVLA-OFT do);
- autoregressive: the action positions hold the previous tokens (teacher forcing in
  training); inference runs the prefix once, then one token per step with a KV cache.
Logits cover the n_bins action bins only, so an output is always a valid action token.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from policies.language import sentence_embedding
from policies.vla_model.configuration import ModelConfig
from policies.vla_model.hf_trunk import HFCausalTrunk
from policies.vla_model.keypoints import build_keypoints
from policies.vla_model.trunk import Trunk
from policies.vla_model.vision import VisionEncoder


class Prefix(NamedTuple):
    tokens: torch.Tensor  # (B, T_p, D)
    mask: torch.Tensor  # (B, T_p), True = a real token
    heat: list[torch.Tensor]  # per camera, keypoint heat maps (B, K, h, w); [] without


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, K * A, n_bins)
    heat: list[torch.Tensor]  # as Prefix.heat


class Generation(NamedTuple):
    tokens: torch.Tensor  # (B, K * A) greedy action tokens
    heat: list[torch.Tensor]  # as Prefix.heat


class VLAModel(nn.Module):
    def __init__(self, cfg: ModelConfig, language_width: int,
                 backbone_config: dict | None = None, pretrained_backbone: bool = True,
                 trunk_config: dict | None = None) -> None:
        super().__init__()
        cfg.validate()
        if cfg.state_dim < 1 or cfg.action_dim < 1:
            raise ValueError(f"state_dim={cfg.state_dim} and action_dim={cfg.action_dim} must "
                             f"be set from the data before building the model")
        self.cfg = cfg
        d = cfg.d_model
        self.n_action_tokens = cfg.chunk_length * cfg.action_dim
        self.vision = VisionEncoder(cfg, backbone_config, pretrained=pretrained_backbone)
        self.vision_proj = nn.Linear(self.vision.width, d)
        self.camera_embed = nn.Parameter(torch.zeros(len(cfg.cameras), 1, d))
        self.keypoints = build_keypoints(cfg, language_width)
        self.language_width = language_width
        self.lang_proj = self.lang_pos = None  # model.language_tokens=false: none
        if cfg.language_tokens:
            self.lang_proj = nn.Linear(language_width, d)
            self.lang_pos = nn.Parameter(torch.zeros(1, cfg.language_max_tokens, d))
        # model.sentence_token: the instruction's sentence embedding as one more token.
        self.sentence_proj = nn.Linear(language_width, d) if cfg.sentence_token else None
        # model.referent_words: what each keypoint group read, as G more tokens.
        self.referent_proj = nn.Linear(language_width, d) if cfg.referent_words else None
        self.state_proj = nn.Linear(cfg.state_dim, d)
        # Normalisation of the proprio state, fitted on the training data (saved with us).
        self.register_buffer("state_mean", torch.zeros(cfg.state_dim))
        self.register_buffer("state_std", torch.ones(cfg.state_dim))
        self.action_pos = nn.Parameter(torch.zeros(1, self.n_action_tokens, d))
        # Parallel: a shared learned query; autoregressive: embeddings of previous tokens
        # (index n_bins is the begin-of-chunk token).
        self.action_query = nn.Parameter(torch.zeros(1, 1, d))
        self.token_embed = nn.Embedding(cfg.n_bins + 1, d)
        if cfg.trunk:  # a pretrained causal LM (hf_trunk.py)
            self.trunk = HFCausalTrunk(cfg.trunk, d, trunk_config,
                                       pretrained=pretrained_backbone)
        else:
            self.trunk = Trunk(d, cfg.layers, cfg.heads, cfg.dropout)
        self.head = nn.Linear(d, cfg.n_bins)
        for p in (self.camera_embed, self.lang_pos, self.action_pos, self.action_query):
            if p is not None:
                nn.init.normal_(p, std=0.02)

    # -- encoding the observation -------------------------------------------------------------
    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """AdamW parameter groups over the trainable parameters (requires_grad): matrices
        decay, biases, norms and embeddings do not (nanoGPT's `configure_optimizers`)."""
        trainable = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        decays = [p.ndim >= 2 and "embed" not in n for n, p in trainable]
        return [{"params": [p for (_, p), d in zip(trainable, decays) if d],
                 "weight_decay": weight_decay},
                {"params": [p for (_, p), d in zip(trainable, decays) if not d],
                 "weight_decay": 0.0}]

    def encode_prefix(self, images: dict[str, torch.Tensor], state: torch.Tensor,
                      lang: torch.Tensor, lang_mask: torch.Tensor) -> Prefix:
        """images: camera -> uint8 (B, H, W, 3); state (B, S); lang (B, L, W_lang); lang_mask
        (B, L). Returns the prefix tokens (B, T_p, D), their key mask (B, T_p) and each
        camera's keypoint heat maps (B, K, h, w)."""
        n_lang = min(lang.shape[1], self.cfg.language_max_tokens)
        # Pooled over every token the encoder gave, before the cut to n_lang.
        sentence = sentence_embedding(lang, lang_mask) if self.sentence_proj else None
        lang, lang_mask = lang[:, :n_lang], lang_mask[:, :n_lang]  # the keypoints read these
        parts, heat_maps = [], []
        for i, name in enumerate(self.cfg.cameras):
            feats, stem_map = self.vision.features(images[name])  # (B, N, W_vis), (B, C, h, w)
            parts.append(self.vision_proj(feats) + self.camera_embed[i])
            if self.keypoints is not None:  # (B, G, D): where the instruction's objects are
                heat = self.keypoints.heat_maps(stem_map, lang, lang_mask)  # (B, K, h, w)
                parts.append(self.keypoints.tokens(heat) + self.camera_embed[i])
                heat_maps.append(heat)
        n_image = sum(p.shape[1] for p in parts)
        if self.lang_proj is not None:
            parts.append(self.lang_proj(lang) + self.lang_pos[:, :n_lang])
        else:  # model.language_tokens=false: the trunk reads the sentence token instead
            n_lang = 0
        if sentence is not None:
            parts.append(self.sentence_proj(sentence).unsqueeze(1))  # (B, 1, D)
        if self.referent_proj is not None:  # (B, G, D)
            words = self.keypoints.group_words(lang, lang_mask)  # (B, G, W)
            parts.append(self.referent_proj(words) + self.keypoints.group_embed)
        state = (state - self.state_mean) / self.state_std
        parts.append(self.state_proj(state).unsqueeze(1))  # (B, 1, D)
        prefix = torch.cat(parts, dim=1)
        b, t_p = prefix.shape[:2]
        mask = torch.ones(b, t_p, dtype=torch.bool, device=prefix.device)
        mask[:, n_image : n_image + n_lang] = lang_mask[:, :n_lang]  # the rest are real
        return Prefix(prefix, mask, heat_maps)

    # -- training forward ----------------------------------------------------------------------
    def forward(self, images, state, lang, lang_mask, target_tokens=None) -> ModelOutput:
        """Logits (B, K * A, n_bins) and the heat maps. The autoregressive decoder needs
        `target_tokens` (B, K * A) for teacher forcing."""
        prefix, prefix_mask, heat = self.encode_prefix(images, state, lang, lang_mask)
        b, t_p, _ = prefix.shape
        n = self.n_action_tokens
        if self.cfg.decoder == "parallel":
            actions = self.action_query.expand(b, n, -1) + self.action_pos
            causal = False
        else:
            if target_tokens is None:
                raise ValueError("the autoregressive decoder needs target_tokens in training")
            bos = torch.full((b, 1), self.cfg.n_bins, dtype=torch.long, device=prefix.device)
            shifted = torch.cat([bos, target_tokens[:, :-1]], dim=1)
            actions = self.token_embed(shifted) + self.action_pos
            causal = True
        x = torch.cat([prefix, actions], dim=1)
        mask = _attention_mask(prefix_mask, n, causal)
        return ModelOutput(self.head(self.trunk(x, mask)[:, t_p:]), heat)

    def loss(self, logits: torch.Tensor, target_tokens: torch.Tensor,
             token_mask: torch.Tensor | None = None, label_sigma: float = 0.0,
             token_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy over action tokens; `token_mask` (B, K * A) drops padding.
        `token_weight` (K * A,) scales each token's term; the mean stays over the unmasked
        tokens, so weights of 1 give the plain loss."""
        return masked_mean(self.token_losses(logits, target_tokens, label_sigma), token_mask,
                           token_weight)

    @staticmethod
    def token_losses(logits: torch.Tensor, target_tokens: torch.Tensor,
                     label_sigma: float = 0.0) -> torch.Tensor:
        """Cross-entropy per action token (B, K * A).

        `label_sigma` > 0 spreads each target over neighbouring bins (a Gaussian of that
        width in bins, as in HL-Gauss): bins are ordered, so predicting the next bin should
        cost less than predicting the opposite action, which plain cross-entropy ignores.
        """
        log_p = F.log_softmax(logits.float(), dim=-1)  # (B, N, n_bins)
        if label_sigma > 0:
            bins = torch.arange(log_p.shape[-1], device=log_p.device, dtype=log_p.dtype)
            soft = torch.exp(-0.5 * ((bins - target_tokens[..., None]) / label_sigma) ** 2)
            soft = soft / soft.sum(-1, keepdim=True)
            return -(soft * log_p).sum(-1)  # (B, N)
        return -log_p.gather(-1, target_tokens[..., None]).squeeze(-1)

    # -- inference ----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, images, state, lang, lang_mask) -> Generation:
        """Greedy action tokens (B, K * A) and the heat maps."""
        if self.cfg.decoder == "parallel":
            logits, heat = self.forward(images, state, lang, lang_mask)
            return Generation(logits.argmax(-1), heat)
        prefix, prefix_mask, heat = self.encode_prefix(images, state, lang, lang_mask)
        b, t_p, _ = prefix.shape
        caches = self.trunk.new_cache()
        self.trunk(prefix, _attention_mask(prefix_mask, 0, True), caches)
        token = torch.full((b, 1), self.cfg.n_bins, dtype=torch.long, device=prefix.device)
        keys = prefix_mask
        out = []
        for i in range(self.n_action_tokens):
            x = self.token_embed(token) + self.action_pos[:, i : i + 1]
            keys = torch.cat([keys, torch.ones(b, 1, dtype=torch.bool, device=keys.device)], 1)
            h = self.trunk(x, keys[:, None, None, :], caches)  # (B, 1, D)
            token = self.head(h).argmax(-1)  # (B, 1)
            out.append(token)
        return Generation(torch.cat(out, dim=1), heat)


def _attention_mask(prefix_mask: torch.Tensor, n_actions: int, causal: bool) -> torch.Tensor:
    """Bool (B, 1, T, T), True = may attend. Prefix tokens see the (unpadded) prefix only;
    action tokens see the prefix and, if `causal`, earlier action tokens, else all of them."""
    b, t_p = prefix_mask.shape
    t = t_p + n_actions
    device = prefix_mask.device
    allowed = torch.zeros(t, t, dtype=torch.bool, device=device)
    allowed[:, :t_p] = True
    if n_actions:
        tail = torch.ones(n_actions, n_actions, dtype=torch.bool, device=device)
        allowed[t_p:, t_p:] = torch.tril(tail) if causal else tail
    keys = torch.cat([prefix_mask, torch.ones(b, n_actions, dtype=torch.bool, device=device)], 1)
    mask = allowed[None] & keys[:, None, :]  # (B, T, T)
    mask |= torch.eye(t, dtype=torch.bool, device=device)[None]  # never an empty row
    return mask[:, None]


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None,
                weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of `values` (B, N) over the tokens `mask` (B, N) keeps, each scaled by
    `weight` (N,) when given (the mean stays over the kept tokens)."""
    mask = torch.ones_like(values) if mask is None else mask.to(values.dtype)
    scaled = values if weight is None else values * weight.to(values)
    return (scaled * mask).sum() / mask.sum().clamp(min=1.0)
