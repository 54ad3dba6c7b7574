"""Giving a trained model an input it lacks, without changing what it does until it
trains: each new projection starts at zero (`vla finetune location_prior=true
sentence_token=true referent_words=true language_tokens=false`). Each function returns
False when the model already has what it asks for."""

from __future__ import annotations

from torch import nn

from policies.vla_model.keypoints import LocationPrior, ReferentKeypoints
from policies.vla_model.modeling import VLAModel


def add_location_prior(model: VLAModel) -> bool:
    """Give a trained model's referent keypoints a zero-initialised LocationPrior (its maps
    are unchanged until it trains); False if they already have one."""
    keypoints = getattr(model, "keypoints", None)
    if not isinstance(keypoints, ReferentKeypoints):
        raise ValueError("location_prior=true needs a checkpoint with keypoint groups "
                         "(model.keypoint_groups > 0); this one has none")
    if keypoints.location is not None:
        return False
    keypoints.location = LocationPrior(keypoints.keys.in_features, keypoints.groups,
                                       keypoints.per_group).to(keypoints.queries.device)
    model.cfg.location_prior = True
    return True


def add_sentence_token(model: VLAModel) -> bool:
    """Give a trained model the sentence token (model.sentence_token) with a zero
    projection, so it starts as a constant token and learns what to carry; False if the
    model already has one."""
    if model.sentence_proj is not None:
        return False
    model.sentence_proj = _zero_language_projection(model)
    model.cfg.sentence_token = True
    return True


def add_referent_words(model: VLAModel) -> bool:
    """Give a trained model with keypoint groups the referent-word tokens
    (model.referent_words) with a zero projection; False if it has them."""
    if model.referent_proj is not None:
        return False
    if not model.cfg.keypoint_groups:
        raise ValueError("referent_words=true needs a checkpoint with keypoint groups "
                         "(model.keypoint_groups > 0); this one has none")
    model.referent_proj = _zero_language_projection(model)
    model.cfg.referent_words = True
    return True


def _zero_language_projection(model: VLAModel) -> nn.Linear:
    """Language width -> d_model, all zeros: new tokens that leave a trained model's
    behaviour as it was until they train."""
    proj = nn.Linear(model.language_width, model.cfg.d_model)
    nn.init.zeros_(proj.weight)
    nn.init.zeros_(proj.bias)
    return proj.to(model.action_query.device)


def drop_language_tokens(model: VLAModel) -> bool:
    """Stop a trained model's trunk reading the instruction's token features
    (model.language_tokens=false), removing their projection; False if it already reads
    none. Needs the sentence token, which then carries the command."""
    if model.lang_proj is None:
        return False
    if model.sentence_proj is None:
        raise ValueError("language_tokens=false needs the sentence token: set "
                         "sentence_token=true as well")
    model.lang_proj = model.lang_pos = None
    model.cfg.language_tokens = False
    return True
