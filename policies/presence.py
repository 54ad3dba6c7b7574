"""The presence score: does the policy see what the command names? Read from the keypoint
heat maps; a calibrated threshold (a checkpoint's presence.json, benchmarks/
presence_score.py) turns it into the refusal of commands that name what is not there.

Its wire names are version 1's, kept for compatibility: the act reply's `grounding`
field, and the `grounding_threshold` and `grounding_score` (the method) capabilities
(docs/protocol.md). Checkpoints written before the rename hold grounding.json.
"""

from __future__ import annotations

import math

import torch

# How the presence score reads the heat maps (the "method" of presence.json).
METHODS = ("all_maps", "referents", "object")


def presence_score(heat: torch.Tensor, method: str, groups: int) -> torch.Tensor:
    """The presence score (B,) of heat maps (B, K, h, w) in `groups` keypoint groups:

    all_maps   mean peak sharpness of every map (`concentration`);
    referents  the lower of groups 0 and 1's mean peak sharpness;
    object     how far group 0's *mean* map is from flat (`group_focus`): the quantity
               `vla pretrain`'s loss trains (peaked on the named object, flat when it is
               absent), so it separates best for grounding-trained policies
               (docs/RESULTS.md, "Refusing what the policy does not see")."""
    if method == "object":
        return group_focus(heat, groups)[:, 0]
    if method == "referents":
        return concentration(heat, groups)
    if method == "all_maps":
        return concentration(heat)
    raise ValueError(f"method={method!r}; expected one of {', '.join(METHODS)}")


def group_focus(heat: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, G): KL divergence (nats) of each group's mean keypoint distribution from a flat
    one, i.e. log(h * w) - entropy: 0 when the group's maps together cover the image
    evenly, log(h * w) when they all pick one pixel. Single maps may each peak somewhere
    while their mean stays flat; the mean is what the grounding loss shapes."""
    h, w = heat.shape[-2:]
    mean = group_maps(heat, groups).flatten(2)  # (B, G, h * w)
    entropy = -(mean * torch.log(mean.clamp(min=1e-12))).sum(-1)
    return math.log(h * w) - entropy


def concentration(heat: torch.Tensor, referent_groups: int = 0) -> torch.Tensor:
    """How sharply heat maps (B, K, h, w) peak: (B,), 0 for flat maps, log(h * w) for one
    hot pixel. The grounding score: maps that find what the instruction names peak on it;
    with nothing to find they stay flatter (benchmarks/presence_score.py measures how
    well that separates).

    referent_groups=0 averages over all K maps. referent_groups=G (the maps in G groups,
    the first two trained to find the instruction's two referents, `vla pretrain`) takes
    the lower of groups 0 and 1: either named thing missing should lower the score."""
    prob = torch.softmax(heat.flatten(2).float(), dim=-1)  # (B, K, h * w)
    peak = torch.log(prob.max(-1).values * prob.shape[-1])  # (B, K)
    if not referent_groups:
        return peak.mean(-1)
    per_group = peak.view(peak.shape[0], referent_groups, -1).mean(-1)  # (B, G)
    return per_group[:, :2].min(-1).values


def group_maps(heat: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, G, h, w): each keypoint group's mean spatial-softmax map of heat maps
    (B, K, h, w), each summing to 1: where the group looks (what `group_focus` scores)."""
    b, k, h, w = heat.shape
    prob = torch.softmax(heat.flatten(2).float(), dim=-1)  # (B, K, h * w)
    return prob.view(b, groups, k // groups, h * w).mean(2).view(b, groups, h, w)
