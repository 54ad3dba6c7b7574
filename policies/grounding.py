"""Grounding: supervising the keypoint heat maps with where the instruction's things are.

    images --conv stem--> (B, C, h, w) --ReferentKeypoints(instruction)--> (B, K, h, w)
    group 0's maps should cover referent 0 (the object), group 1's referent 1 (the zone,
    base or board location, or the object again when the sentence names one thing);
    a referent the scene lacks should leave its group's maps flat.

`vla pretrain` trains the stem and keypoints this way on captioned synthetic scenes
(sims/captioned.py), and `vla train` can keep doing it beside the action loss
(`grounding_data`, co-training), so words the robot demonstrations never show still
point the policy's keypoints at the right pixels. A flat group-0 mean map is also what
the "object" presence score (policies/presence.py `presence_score`) reads as "not in
view".
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from policies.presence import group_focus
from policies.vla_model.configuration import ModelConfig
from policies.vla_model.keypoints import ReferentKeypoints, build_keypoints
from policies.vla_model.vision import StemEncoder

FORMAT, VERSION = "vla-grounding", 1
REFERENTS = 2  # groups 0 and 1 are supervised; the others stay the policy's own
ABSENT, PIXEL = -2, -3  # referent codes (sims/captioned.py); >= 0 is a segmentation slot
PIXEL_SIGMA = 0.75  # width of a board location's target, in heat-map cells
HIT_RADIUS = 0.1  # a referent is found when the maps' mean lands this close (of [-1, 1])


def check_groundable(cfg: ModelConfig) -> None:
    """Grounding needs the conv stem and referent keypoints with a group per referent."""
    if cfg.vision_backbone or cfg.vision_stem != "conv":
        raise ValueError(f"grounding needs model.vision_stem='conv' and no vision_backbone; "
                         f"got vision_stem={cfg.vision_stem!r}, "
                         f"vision_backbone={cfg.vision_backbone!r}")
    if cfg.keypoint_groups < REFERENTS:
        raise ValueError(f"grounding needs model.keypoint_groups >= {REFERENTS} (one group per "
                         f"referent); got keypoint_groups={cfg.keypoint_groups}")


class GroundingModel(nn.Module):
    """The policy's grounding path alone: conv stem + referent keypoints. Its weights
    are named as in VLAModel (vision.stem.*, keypoints.*), so they load into a policy."""

    def __init__(self, cfg: ModelConfig, language_width: int) -> None:
        super().__init__()
        check_groundable(cfg)
        self.cfg = cfg
        self.vision = StemEncoder(cfg)
        self.keypoints: ReferentKeypoints = build_keypoints(cfg, language_width)

    def forward(self, images: torch.Tensor, lang: torch.Tensor,
                lang_mask: torch.Tensor) -> torch.Tensor:
        return grounding_heat(self, images, lang, lang_mask)


def grounding_heat(model: nn.Module, images: torch.Tensor, lang: torch.Tensor,
                   lang_mask: torch.Tensor) -> torch.Tensor:
    """Heat maps (B, K, h, w) of a VLAModel or GroundingModel for uint8 images
    (B, H, W, 3) and instruction features (B, L, W) with mask (B, L)."""
    return model.keypoints.heat_maps(model.vision.stem_map(images), lang, lang_mask)


def referent_targets(seg: torch.Tensor, referents: torch.Tensor, pixels: torch.Tensor,
                     size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Target distributions (B, R, size, size) and an absent flag (B, R).

    seg (B, S, S) int8 segmentation slots; referents (B, R) slot / ABSENT / PIXEL;
    pixels (B, R, 2) (u, v) in pixels of S for PIXEL referents."""
    b, s, _ = seg.shape
    r = referents.shape[1]
    slots = referents.clamp(min=0).to(seg.dtype)
    masks = (seg[:, None] == slots[..., None, None]).float()  # (B, R, S, S)
    maps = F.adaptive_avg_pool2d(masks, size)  # (B, R, size, size)
    cells = (torch.arange(size, dtype=torch.float32) + 0.5) * (s / size)  # centres, pixels
    du = (cells[None, None, None, :] - pixels[..., 0, None, None]) / (s / size)
    dv = (cells[None, None, :, None] - pixels[..., 1, None, None]) / (s / size)
    blob = torch.exp(-0.5 * (du ** 2 + dv ** 2) / PIXEL_SIGMA ** 2)  # (B, R, size, size)
    is_pixel = (referents == PIXEL)[..., None, None]
    maps = torch.where(is_pixel, torch.nan_to_num(blob), maps)
    absent = (referents == ABSENT) | (maps.flatten(2).sum(-1) <= 0)
    maps = maps / maps.flatten(2).sum(-1).clamp(min=1e-8)[..., None, None]
    return maps.view(b, r, size, size), absent


def grounding_loss(heat: torch.Tensor, targets: torch.Tensor, absent: torch.Tensor,
                   groups: int) -> torch.Tensor:
    """KL(target || group's mean map) for present referents; for absent ones, each map
    of the group should be flat: KL(uniform || map). heat (B, K, h, w); targets
    (B, R, h, w); absent (B, R). Zero when every map does exactly that."""
    b, k, h, w = heat.shape
    hw = h * w
    log_p = F.log_softmax(heat.float().flatten(2), dim=-1).view(b, groups, k // groups, hw)
    losses = []
    for r in range(targets.shape[1]):
        t = targets[:, r].flatten(1).float()  # (B, hw)
        log_mean = torch.logsumexp(log_p[:, r], dim=1) - math.log(k // groups)  # (B, hw)
        present = (t * (torch.log(t.clamp(min=1e-12)) - log_mean)).sum(-1)  # (B,)
        flat = (-log_p[:, r].mean(-1) - math.log(hw)).mean(-1)  # (B,)
        losses.append(torch.where(absent[:, r], flat, present))
    return torch.stack(losses, 1).mean()


def group_centres(heat: torch.Tensor, groups: int) -> torch.Tensor:
    """Where the first REFERENTS groups point: the centre (x, y) in [-1, 1] of each
    group's mean map, (B, R, 2), from heat maps (B, K, h, w)."""
    b, k, h, w = heat.shape
    prob = torch.softmax(heat.float().flatten(2), -1).view(b, groups, k // groups, h, w)
    return _centre(prob[:, :REFERENTS].mean(2))


def _centre(p: torch.Tensor) -> torch.Tensor:
    """Centre of mass (x, y) in [-1, 1] of maps (..., h, w) that sum to 1."""
    h, w = p.shape[-2:]
    xs = torch.linspace(-1, 1, w, device=p.device)
    ys = torch.linspace(-1, 1, h, device=p.device)
    return torch.stack([(p.sum(-2) * xs).sum(-1), (p.sum(-1) * ys).sum(-1)], -1)


@torch.no_grad()
def grounding_metrics(heat: torch.Tensor, targets: torch.Tensor, absent: torch.Tensor,
                      groups: int) -> dict[str, torch.Tensor]:
    """Per referent: `hit` (B, R) whether the group's mean map is centred within
    HIT_RADIUS of the target's centre (present referents); `score` (B, R) the group's
    focus (how far its mean map is from flat, `group_focus`, the "object" grounding score
    for referent 0), which should be high when present and low when absent."""
    r = targets.shape[1]
    hit = (group_centres(heat, groups) - _centre(targets.float())).norm(dim=-1) < HIT_RADIUS
    return {"hit": hit & ~absent, "score": group_focus(heat, groups)[:, :r]}


# -- checkpoints -------------------------------------------------------------------------------
def save_grounding(directory: str | Path, model: GroundingModel, language_width: int,
                   record: dict) -> Path:
    """config.json + model.safetensors (vision.stem.*, keypoints.*), swapped in atomically."""
    import dataclasses

    from safetensors.torch import save_file

    from policies.checkpoint import staging_dir, swap_into_place

    final = Path(directory)
    tmp = staging_dir(final)
    config = {"format": FORMAT, "version": VERSION, "model": dataclasses.asdict(model.cfg),
              "language_width": language_width, "pretraining": record}
    (tmp / "config.json").write_text(json.dumps(config, indent=1, default=str) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": FORMAT})
    swap_into_place(tmp, final)
    return final


# The model settings a grounding checkpoint fixes: its weights only fit a policy that
# agrees on them.
SHARED_FIELDS = ("stem_channels", "keypoints", "keypoint_groups", "language_model",
                 "vision_stem", "image_size", "d_model")
GROUNDING_PATH = ("vision.stem.", "keypoints.")


def init_from(model: nn.Module, directory: str | Path) -> dict:
    """Copy the weights of a checkpoint (`vla pretrain`'s grounding checkpoint or any
    policy checkpoint) into `model` by name. Every tensor in the file must exist in the
    model with the same shape; the data-fitted state statistics are not copied. Returns
    what was loaded, for the run's summary."""
    from safetensors.torch import load_file

    path = Path(directory)
    if (path / "checkpoint" / "config.json").is_file():  # a run directory
        path = path / "checkpoint"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"init_from={str(directory)!r} holds no checkpoint (no "
                                f"config.json); expected a `vla pretrain` or `vla train` run")
    config = json.loads((path / "config.json").read_text())
    theirs = config.get("model", {})
    for name in SHARED_FIELDS:
        if name in theirs and theirs[name] != getattr(model.cfg, name):
            raise ValueError(f"init_from={str(directory)!r} has model.{name}={theirs[name]!r} "
                             f"but this model has {getattr(model.cfg, name)!r}; set "
                             f"model.{name} to match")
    # A prior is an addition, not a shape: a checkpoint without one may start a model with
    # one (the prior starts at zero, as `vla finetune location_prior=true` does), but not
    # the other way round, which would drop trained weights.
    their_prior = bool(theirs.get("location_prior", False))
    if their_prior and not model.cfg.location_prior:
        raise ValueError(f"init_from={str(directory)!r} has model.location_prior=true but "
                         f"this model has false; set model.location_prior: true")
    if model.cfg.location_prior and not their_prior:
        print(f"init_from: {str(directory)!r} has no location prior; this model's starts "
              f"at zero (untrained)", file=sys.stderr)
    state = load_file(str(path / "model.safetensors"), device="cpu")
    state = {k: v for k, v in state.items() if k not in ("state_mean", "state_std")}
    if isinstance(model, GroundingModel):  # from a policy: its grounding path only
        state = {k: v for k, v in state.items() if k.startswith(GROUNDING_PATH)}
    own = model.state_dict()
    unknown = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
             if k in own and v.shape != own[k].shape]
    if unknown or wrong:
        raise ValueError(f"init_from={str(directory)!r} does not fit this model: "
                         f"{len(unknown)} unknown tensors {unknown[:3]}, {len(wrong)} of "
                         f"another shape {wrong[:3]}")
    model.load_state_dict(state, strict=False)
    return {"init_from": str(path), "init_format": config.get("format"),
            "init_tensors": len(state)}


def load_grounding_path(directory: str | Path):
    """The stem + keypoints of a grounding or policy checkpoint, for probes: a module
    with `.cfg`, `.vision.stem_map` and `.keypoints` (eval mode, CPU)."""
    from safetensors.torch import load_file

    from policies.checkpoint import load_model
    from policies.dataclass_io import from_dict

    path = Path(directory)
    if (path / "checkpoint" / "config.json").is_file():
        path = path / "checkpoint"
    config = json.loads((path / "config.json").read_text())
    if config.get("format") != FORMAT:
        return load_model(path)[0]
    model = GroundingModel(from_dict(ModelConfig, config["model"]), config["language_width"])
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return model.eval()
