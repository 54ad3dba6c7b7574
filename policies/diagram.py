"""The model's token layout and trunk as plain text, drawn from a config.

    python -m policies.diagram [CHECKPOINT_DIR]     # default: the shipped policy

`model_diagram(cfg)` reads the same flags that `policies/vla_model/modeling.py` builds
the model from (cameras, conv stem, keypoints and their groups, location prior,
instruction tokens, sentence token, referent words, state, chunk, decoder, trunk), so a
diagram made from a checkpoint's config.json says what that checkpoint's model is.
docs/model.md holds the shipped policy's, and tests/docs/test_model_diagram.py checks that it
is current.
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from pathlib import Path

from policies.vla_model.configuration import PACKAGED_MINILM, ModelConfig

WIDTH = 88  # the whole diagram, in characters
LABEL, COUNT = 20, 7  # column widths: the row's name, its token count
MINILM_WIDTH = 384  # all-MiniLM-L6-v2's feature width


def model_diagram(cfg, language_width: int | None = None) -> str:
    """A plain-text diagram of the model `cfg` describes.

    `cfg` is a `policies.vla_model.configuration.ModelConfig`, the dict of a checkpoint's
    config.json (with its "model" and "language_width"), or a dict of ModelConfig fields.
    `language_width` is the language encoder's feature width (default: the checkpoint's,
    or all-MiniLM's 384 for the packaged encoder); without it there is no parameter count.
    """
    cfg, language_width, backbone, trunk_config = _read(cfg, language_width)
    cfg.validate()
    d = cfg.d_model
    rows, fixed, variable = _prefix_rows(cfg, backbone, language_width or "W")
    action_row, n_actions = _action_row(cfg, variable)

    total = str(fixed + n_actions) + "".join(f" + {v}" for v in variable)
    if not fixed + n_actions:
        total = " + ".join(variable)
    present = [(name, count) for name, count, _ in rows if count != "0"]
    sequence = (" | ".join(f"{name} {count}" for name, count in present)
                + f" || {action_row[0]} {action_row[1]}")
    lines = [
        "VLA model (policies/vla_model/modeling.py) as this config builds it",
        "",
        *_wrap("observation", ", ".join(f"camera {c}" for c in cfg.cameras)
               + f" (each resized to {cfg.image_size}x{cfg.image_size}), the "
               f"instruction, the state ({_dim(cfg.state_dim)} numbers)", 13),
        *_wrap("sequence", f"[ {sequence} ]  (prefix || action tokens; counts are "
               f"tokens)", 13),
        "",
        _row("prefix, in order", "tokens", "how each is made"),
        *(_row("  " + name, count, text) for name, count, text in rows),
        _row("then", "", ""),
        _row("  " + action_row[0], action_row[1], action_row[2]),
        _row("", "-" * (COUNT - 2), ""),
        _row("trunk input", total, ""),
        "",
        *_trunk(cfg, trunk_config),
        *_wrap("head", f"linear {d} -> {cfg.n_bins} bins for each of the "
               f"{action_row[1]} action tokens; an action token is always a valid bin", 12),
        *_wrap("language", f"{cfg.language_model}, frozen, not stored in the checkpoint; "
               f"token features cached per instruction", 12),
    ]
    if cfg.state_dim < 1 or cfg.action_dim < 1:
        lines += _wrap("?", "the state and action sizes are set from the data when "
                       "training starts; this config has none yet", 12)
    params = _parameters(cfg, language_width, backbone, trunk_config)
    if params is not None:
        lines += _wrap("parameters", f"{params:,} (the frozen language encoder not "
                       f"included)", 12)
    return "\n".join(line.rstrip() for line in lines) + "\n"


# -- the rows ------------------------------------------------------------------------------
def _prefix_rows(cfg: ModelConfig, backbone: dict | None,
                 w) -> tuple[list[tuple[str, str, str]], int, list[str]]:
    """The prefix's rows (name, tokens, how it is made), in order; the tokens that are
    fixed in number, and a phrase for each part whose number varies."""
    d = cfg.d_model
    rows: list[tuple[str, str, str]] = []
    fixed, variable = 0, []
    for camera in cfg.cameras:
        n, text = _image_tokens(cfg, backbone)
        rows.append((f"{camera}: image", str(n) if n else "var", text))
        if n:
            fixed += n
        else:
            variable.append("the backbone's tokens")
        if cfg.keypoints:
            n, text = _keypoint_tokens(cfg)
            rows.append((f"{camera}: keypoints", str(n), text))
            fixed += n
    if cfg.language_tokens:
        rows.append(("instruction", f"<={cfg.language_max_tokens}",
                     f"the instruction's token features from the frozen language encoder, "
                     f"at most {cfg.language_max_tokens} (padding masked); linear {w} -> "
                     f"{d}, + a learned position per token"))
        variable.append(f"up to {cfg.language_max_tokens} instruction tokens")
    else:
        rows.append(("instruction", "0", "none: model.language_tokens=false (the trunk "
                     "reads the command through the sentence token"
                     + (" and the referent words" if cfg.referent_words else "") + ")"))
    if cfg.sentence_token:
        rows.append(("sentence", "1", f"the instruction's sentence embedding (mean of the "
                     f"encoder's token features, unit length); linear {w} -> {d}"))
        fixed += 1
    else:
        rows.append(("sentence", "0", "none: model.sentence_token=false"))
    if cfg.referent_words:
        g = cfg.keypoint_groups
        rows.append(("referent words", str(g), f"the words each of the {g} keypoint "
                     f"groups read (its attention-pooled token features); linear {w} -> "
                     f"{d}, + the group's embedding"))
        fixed += g
    else:
        rows.append(("referent words", "0", "none: model.referent_words=false"))
    rows.append(("state", "1", f"{_dim(cfg.state_dim)} numbers, normalised with the "
                 f"training data's mean and std; linear {_dim(cfg.state_dim)} -> {d}"))
    return rows, fixed + 1, variable


def _action_row(cfg: ModelConfig, variable: list[str]) -> tuple[tuple[str, str, str], int]:
    """The action tokens' row and their number (0 before the data sets the action size,
    which then joins `variable`)."""
    n_actions = cfg.chunk_length * cfg.action_dim
    if cfg.decoder == "parallel":
        action_text = ("a learned query + its position; one pass gives the whole chunk "
                       "(parallel decoder)")
    else:
        action_text = ("the previous action token's embedding (begin-of-chunk first) + "
                       "its position; one token at a time with a KV cache "
                       "(autoregressive decoder)")
    if not n_actions:
        variable.append(f"{cfg.chunk_length} x ? action tokens")
    return ("action", str(n_actions) if n_actions else f"{cfg.chunk_length} x ?",
            f"{cfg.chunk_length} steps x {_dim(cfg.action_dim)} dimensions, each "
            + action_text), n_actions


def _image_tokens(cfg: ModelConfig, backbone: dict | None) -> tuple[int, str]:
    """(tokens per camera, or 0 when the backbone decides; how they are made)."""
    if cfg.vision_backbone:
        return 0, (f"pretrained backbone {cfg.vision_backbone} (transformers AutoModel, "
                   f"its own input size and normalisation): its output tokens; linear -> "
                   f"{cfg.d_model}, + a camera embedding")
    side = cfg.image_size // cfg.patch_size
    vit = (f"{side}x{side} = {side * side} patches + CLS; width {cfg.vision_width}, "
           f"{cfg.vision_layers} layers, {cfg.vision_heads} heads; linear "
           f"{cfg.vision_width} -> {cfg.d_model}, + a camera embedding")
    if cfg.vision_stem == "conv":
        stem = cfg.image_size // 4
        text = (f"conv stem (three 3x3 convs, two of stride 2): {cfg.image_size}x"
                f"{cfg.image_size}x3 -> {stem}x{stem}x{cfg.stem_channels}; ViT from "
                f"scratch on the stem map, patch {cfg.patch_size // 4} (= "
                f"{cfg.patch_size} px of the image): " + vit)
    else:
        text = (f"ViT from scratch on the pixels, patch {cfg.patch_size}: " + vit)
    return side * side + 1, text


def _keypoint_tokens(cfg: ModelConfig) -> tuple[int, str]:
    stem = cfg.image_size // 4
    maps = f"{cfg.keypoints} heat maps on the {stem}x{stem} stem map"
    if not cfg.keypoint_groups:
        return 1, (f"{maps}, FiLM-conditioned on the mean of the instruction's token "
                   f"features; spatial softmax -> {cfg.keypoints} (x, y) -> MLP -> one "
                   f"token")
    g, per = cfg.keypoint_groups, cfg.keypoints // cfg.keypoint_groups
    prior = ("; each map gets a location prior (a quadratic in x, y whose coefficients "
             "the group's words choose);" if cfg.location_prior else ";")
    return g, (f"{maps} in {g} group{'s' if g > 1 else ''} of {per}: each group attends "
               f"over the instruction's tokens, and what it read modulates (FiLM) a "
               f"shared 3x3 conv of the map before the group's own 1x1 convs" + prior
               + f" spatial softmax -> {per} (x, y) per group -> MLP -> one token per "
               f"group, + the group's embedding")


def _trunk(cfg: ModelConfig, trunk_config: dict | None) -> list[str]:
    if cfg.trunk:
        layers = (f", {trunk_config.get('num_hidden_layers')} layers, width "
                  f"{trunk_config.get('hidden_size')}" if trunk_config else "")
        return _wrap("trunk", f"pretrained causal language model {cfg.trunk}{layers}; "
                     f"linear {cfg.d_model} -> its width and back; causal attention over "
                     f"every token (observation tokens see only earlier ones)", 12)
    attend = ("the prefix and every action token" if cfg.decoder == "parallel"
              else "the prefix and the action tokens before them")
    return _wrap("trunk", f"Transformer from scratch (pre-norm): {cfg.layers} layers, width "
                 f"{cfg.d_model}, {cfg.heads} heads, MLP {4 * cfg.d_model}, dropout "
                 f"{cfg.dropout:g}; prefix tokens attend to the prefix (padding masked), "
                 f"action tokens to {attend}", 12)


def _row(name: str, count: str, text: str) -> str:
    body = textwrap.wrap(text, WIDTH - LABEL - COUNT - 2, break_on_hyphens=False) or [""]
    first = f"{name:<{LABEL}}{count:>{COUNT}}  {body[0]}"
    return "\n".join([first] + [" " * (LABEL + COUNT + 2) + b for b in body[1:]])


def _wrap(name: str, text: str, indent: int) -> list[str]:
    body = textwrap.wrap(text, WIDTH - indent, break_on_hyphens=False)
    return [f"{name:<{indent}}{body[0]}"] + [" " * indent + b for b in body[1:]]


def _dim(n: int) -> str:
    return str(n) if n > 0 else "?"


# -- reading configs and counting ----------------------------------------------------------
def _read(cfg, language_width):
    """(ModelConfig, language width, backbone config, trunk config) from any accepted form."""
    if isinstance(cfg, ModelConfig):
        cfg = dataclasses.replace(cfg)
        backbone = trunk = None
    elif isinstance(cfg, dict):
        from policies.dataclass_io import from_dict

        if "model" in cfg:  # a checkpoint's config.json
            language_width = language_width or cfg.get("language_width")
            backbone, trunk = cfg.get("vision_backbone_config"), cfg.get("trunk_config")
            # As policies/checkpoint.py reads it: older checkpoints had neither field.
            cfg = from_dict(ModelConfig, {"vision_stem": "patch", "keypoints": 0,
                                          **cfg["model"]})
        else:
            backbone = trunk = None
            cfg = from_dict(ModelConfig, cfg)
    else:
        raise TypeError(f"model_diagram takes a ModelConfig or a config dict, not "
                        f"{type(cfg).__name__}")
    if language_width is None and cfg.language_model == PACKAGED_MINILM:
        language_width = MINILM_WIDTH
    return cfg, language_width, backbone, trunk


def _parameters(cfg: ModelConfig, language_width, backbone, trunk_config) -> int | None:
    """The model's parameter count, built on the meta device (no memory, no weights), or
    None when the config alone cannot say (dimensions unset, a backbone or trunk whose
    own config is not given)."""
    if (not language_width or cfg.state_dim < 1 or cfg.action_dim < 1
            or (cfg.vision_backbone and not backbone) or (cfg.trunk and not trunk_config)):
        return None
    import torch

    from policies.vla_model.modeling import VLAModel

    with torch.device("meta"):
        model = VLAModel(cfg, language_width, backbone_config=backbone,
                         pretrained_backbone=False, trunk_config=trunk_config)
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    import json

    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print(__doc__.strip().splitlines()[2].strip())
        return 0 if args and args[0] in ("-h", "--help") else 2
    from policies.registry import resolve_checkpoint

    try:
        directory = resolve_checkpoint(args[0] if args else None)
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    path = Path(directory) / "config.json"
    if not path.is_file():
        print(f"{directory}: no config.json (expected a checkpoint written by `vla train`; "
              f"a LoRA adapter draws as its base)", file=sys.stderr)
        return 2
    print(model_diagram(json.loads(path.read_text())), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
