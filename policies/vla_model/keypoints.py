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

from policies.vla_model.configuration import ModelConfig


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
        return self.tokens(self.heat_maps(feats, lang, lang_mask))

    def tokens(self, heat: torch.Tensor) -> torch.Tensor:
        """Heat maps (B, K, h, w) -> one token (B, 1, D)."""
        coords = _expected_xy(heat)  # (B, K, 2)
        return self.to_token(coords.flatten(1).to(heat.dtype)).unsqueeze(1)

    def coordinates(self, feats: torch.Tensor, lang: torch.Tensor,
                    lang_mask: torch.Tensor) -> torch.Tensor:
        """The K expected image coordinates (B, K, 2), x and y in [-1, 1]."""
        return _expected_xy(self.heat_maps(feats, lang, lang_mask))

    def heat_maps(self, feats: torch.Tensor, lang: torch.Tensor,
                  lang_mask: torch.Tensor) -> torch.Tensor:
        """The K heat maps (B, K, h, w), before the spatial softmax."""
        weights = lang_mask.to(lang.dtype).unsqueeze(-1)  # (B, L, 1)
        pooled = (lang * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, W)
        gamma, beta = self.film(pooled).chunk(2, dim=-1)  # (B, C) each
        x = feats * (1 + gamma[..., None, None]) + beta[..., None, None]
        return self.heat(x)


class ReferentKeypoints(nn.Module):
    """Keypoints in G groups, each conditioned on its own part of the instruction.

    "put the red block in the green zone" names two things; one mean-pooled instruction
    vector (LanguageKeypoints) mixes them, and benchmarks/referent_probe.py measured that
    the keypoints then locate the first referent but not the second. Here each group has
    a learned query that attends over the instruction's tokens, so one group can read
    "red block" while another reads "green zone":

        lang (B, L, W) --attention pooling, one query per group--> (B, G, W)
        stem (B, C, h, w) --shared 3x3 conv--> FiLM per group --grouped 1x1 convs-->
        (B, G * K/G, h, w) --spatial softmax--> (B, G, K/G, 2) --MLP--> G tokens (B, G, D)

    FiLM comes after one shared 3x3 conv, and the per-group maps are 1x1 convs, so G
    groups cost little more than one (a 3x3 conv per group would cost G times as much).
    With `location_prior`, each map also gets a quadratic in (x, y) chosen by the group's
    words (LocationPrior).
    """

    def __init__(self, channels: int, language_width: int, n_keypoints: int, groups: int,
                 d_model: int, hidden: int = 32, location_prior: bool = False) -> None:
        super().__init__()
        if groups < 1 or n_keypoints % groups:
            raise ValueError(f"model.keypoints={n_keypoints} must be a positive multiple of "
                             f"model.keypoint_groups={groups}")
        self.groups, self.per_group = groups, n_keypoints // groups
        self.queries = nn.Parameter(torch.randn(groups, language_width) * 0.02)  # (G, W)
        self.keys = nn.Linear(language_width, language_width)
        # One FiLM per group, zero-initialised: every group starts from the shared map.
        self.film = nn.Parameter(torch.zeros(groups, language_width, 2 * channels))
        self.film_bias = nn.Parameter(torch.zeros(groups, 2 * channels))
        self.shared = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GELU())
        self.heat = nn.Sequential(
            nn.Conv2d(groups * channels, groups * hidden, 1, groups=groups), nn.GELU(),
            nn.Conv2d(groups * hidden, n_keypoints, 1, groups=groups),
        )
        self.location = (LocationPrior(language_width, groups, self.per_group)
                         if location_prior else None)
        self.group_embed = nn.Parameter(torch.randn(groups, d_model) * 0.02)
        self.to_token = nn.Sequential(
            nn.Linear(2 * self.per_group, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )

    def forward(self, feats: torch.Tensor, lang: torch.Tensor,
                lang_mask: torch.Tensor) -> torch.Tensor:
        """feats (B, C, h, w); lang (B, L, W) with mask (B, L) -> G tokens (B, G, D)."""
        return self.tokens(self.heat_maps(feats, lang, lang_mask))

    def tokens(self, heat: torch.Tensor) -> torch.Tensor:
        """Heat maps (B, K, h, w), group-major -> G tokens (B, G, D)."""
        coords = _expected_xy(heat)  # (B, K, 2)
        b = coords.shape[0]
        per_group = coords.view(b, self.groups, 2 * self.per_group).to(heat.dtype)
        return self.to_token(per_group) + self.group_embed  # (B, G, D)

    def attention(self, lang: torch.Tensor, lang_mask: torch.Tensor) -> torch.Tensor:
        """Each group's weights over the instruction's tokens (B, G, L); rows sum to 1."""
        scores = torch.einsum("blw,gw->bgl", self.keys(lang), self.queries)
        scores = scores / lang.shape[-1] ** 0.5
        scores = scores.float().masked_fill(~lang_mask[:, None, :], float("-inf"))
        return F.softmax(scores, dim=-1)

    def group_words(self, lang: torch.Tensor, lang_mask: torch.Tensor) -> torch.Tensor:
        """What each group read of the instruction (B, G, W): its attention-weighted mean
        of the token features ("red block", "green zone", "left edge")."""
        return torch.einsum("bgl,blw->bgw", self.attention(lang, lang_mask).to(lang.dtype),
                            lang)

    def coordinates(self, feats: torch.Tensor, lang: torch.Tensor,
                    lang_mask: torch.Tensor) -> torch.Tensor:
        """The K expected image coordinates (B, K, 2), x and y in [-1, 1], group-major."""
        return _expected_xy(self.heat_maps(feats, lang, lang_mask))

    def heat_maps(self, feats: torch.Tensor, lang: torch.Tensor,
                  lang_mask: torch.Tensor) -> torch.Tensor:
        """The K heat maps (B, K, h, w), group-major, before the spatial softmax."""
        pooled = self.group_words(lang, lang_mask)  # (B, G, W)
        film = torch.einsum("bgw,gwc->bgc", pooled, self.film) + self.film_bias
        gamma, beta = film.chunk(2, dim=-1)  # (B, G, C) each
        shared = self.shared(feats)  # (B, C, h, w)
        x = shared[:, None] * (1 + gamma[..., None, None]) + beta[..., None, None]
        b, g, c, h, w = x.shape
        heat = self.heat(x.reshape(b, g * c, h, w))  # (B, K, h, w)
        if self.location is not None:
            heat = heat + self.location(pooled, h, w).to(heat.dtype)
        return heat


class LocationPrior(nn.Module):
    """A heat-map term for places nothing in the image marks.

    The heat maps are convolutions of the image: the same pixels give the same heat
    wherever they are, so on a plain board no map can peak at "the left edge"
    (benchmarks/grounding_transfer.py measured group 1 flat on every push-to board
    location). This adds to map k of group g a quadratic in the map's coordinates,

        prior_k(x, y) = a x + b y + c x^2 + d y^2 + e xy,   x, y in [-1, 1],

    with (a..e) a linear function of the group's pooled words. A peak at (x0, y0) is
    -s((x - x0)^2 + (y - y0)^2), i.e. one such quadratic; what the words name (and the
    learned constant part) decides where. Zero-initialised: a model starts with the maps
    it had without the prior.
    """

    TERMS = 5  # x, y, x^2, y^2, xy
    # The coefficients are GAIN x (words @ weight): a peak needs coefficients of tens,
    # which zero-initialised weights reach only slowly. 400 grounding steps at lr 1e-3
    # from the shipped policy's maps: median miss of the push-to board location 0.43 of
    # the half-width at gain 1, 0.29 at 4, 0.22 at 16 (0.61 without a prior), and stable.
    GAIN = 16.0

    def __init__(self, language_width: int, groups: int, per_group: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(groups, language_width, per_group * self.TERMS))
        self.bias = nn.Parameter(torch.zeros(groups, per_group * self.TERMS))

    def forward(self, pooled: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """pooled (B, G, W) group word vectors -> prior (B, G * per_group, h, w)."""
        coef = self.GAIN * (torch.einsum("bgw,gwt->bgt", pooled.float(), self.weight.float())
                            + self.bias)
        b = coef.shape[0]
        coef = coef.reshape(b, -1, self.TERMS)  # (B, K, 5), group-major as the maps
        ys = torch.linspace(-1, 1, h, device=pooled.device)[:, None].expand(h, w)
        xs = torch.linspace(-1, 1, w, device=pooled.device)[None, :].expand(h, w)
        basis = torch.stack([xs, ys, xs * xs, ys * ys, xs * ys])  # (5, h, w)
        return torch.einsum("bkt,thw->bkhw", coef, basis)


def build_keypoints(cfg: ModelConfig, language_width: int) -> nn.Module | None:
    """The keypoint module the config asks for: none, one pooled instruction, or groups."""
    if not cfg.keypoints:
        return None
    if cfg.keypoint_groups:
        return ReferentKeypoints(cfg.stem_channels, language_width, cfg.keypoints,
                                 cfg.keypoint_groups, cfg.d_model,
                                 location_prior=cfg.location_prior)
    return LanguageKeypoints(cfg.stem_channels, language_width, cfg.keypoints, cfg.d_model)


def _expected_xy(heat: torch.Tensor) -> torch.Tensor:
    """Spatial softmax of heat maps (B, K, h, w) -> expected (x, y) (B, K, 2) in [-1, 1]."""
    b, k, h, w = heat.shape
    prob = F.softmax(heat.flatten(2).float(), dim=-1).view(b, k, h, w)
    ys = torch.linspace(-1, 1, h, device=heat.device)
    xs = torch.linspace(-1, 1, w, device=heat.device)
    return torch.stack([(prob.sum(2) * xs).sum(-1),  # expected x (B, K)
                        (prob.sum(3) * ys).sum(-1)], dim=-1)  # (B, K, 2)
