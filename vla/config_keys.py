"""docs/config-keys.md: every KEY=VALUE key of `vla train`, `vla finetune`, `vla dagger`
and `vla pretrain`, with its type, default and the comment beside its field, drawn from
the config dataclasses themselves (tests/vla/test_config_keys.py holds the page to them).

    python -m vla.config_keys > docs/config-keys.md
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import tokenize
import typing

HEADER = """# Configuration keys

Every key that `--config FILE` (YAML) and `KEY=VALUE` overrides accept, with its default.
Generated from the config dataclasses by `python -m vla.config_keys > docs/config-keys.md`;
a test fails when this page and the code disagree. Nested keys take dots on the command
line (`model.d_model=128`, `action_loss_weights.dyaw=5`). An unknown key is refused with
the closest valid name.

Fine-tuning has its own defaults (fewer steps, a smaller batch, a learning rate chosen by
`method`), which differ from `vla train`'s recipe; the tables below show each command's.
"""


def field_comments(cls) -> dict[str, str]:
    """Field name -> its comment in the source (the lines just above it, then the one
    beside it), over the class and its bases; a subclass's comment wins."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass.__module__ == "types":
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        comments.update(_comments_in(source))
    return comments


def _comments_in(source: str) -> dict[str, str]:
    found, above, line_of = {}, [], {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            line_of.setdefault(tok.start[0], []).append(tok.string.lstrip("# ").rstrip())
    lines = source.splitlines()
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").rstrip())
            continue
        name = stripped.split(":", 1)[0]  # a field: `name: type = default` in the body
        if text.startswith("    ") and not text.startswith("     ") and ":" in stripped \
                and name.isidentifier() and not stripped.startswith(("def ", "class ")):
            words = " ".join([*above, *line_of.get(number, [])]).strip()
            if words:
                found[name] = words
        above = []
    return found


def _type_name(annotation) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return text or str(annotation).replace("typing.", "")


def keys_table(cls, prefix: str = "") -> str:
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    rows = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name in getattr(cls, "MISPLACED", {}):
            continue
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else "")
        if dataclasses.is_dataclass(default):
            default = "see below"
        comment = comments.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `{prefix}{f.name}` | `{_type_name(hints[f.name])}` | "
                    f"`{default!r}` | {comment} |")
    return "\n".join(rows)


def model_table() -> str:
    from policies.vla_model.configuration import DATA_SIZES, SIZES, ModelConfig

    hints = typing.get_type_hints(ModelConfig)
    comments = field_comments(ModelConfig)
    sizes = list(SIZES)
    rows = ["| key | type | " + " | ".join(sizes) + " | what it does |",
            "|---|---|" + "---|" * len(sizes) + "---|"]
    for f in dataclasses.fields(ModelConfig):
        if f.name in DATA_SIZES:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        values = [f"`{SIZES[s].get(f.name, default)!r}`" for s in sizes]
        comment = comments.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `model.{f.name}` | `{_type_name(hints[f.name])}` | "
                    + " | ".join(values) + f" | {comment} |")
    return "\n".join(rows)


def page() -> str:
    from vla.dagger.loop import DaggerConfig
    from vla.pretrain.loop import PretrainConfig
    from vla.train.config import TrainConfig
    from vla.train.finetune import DEFAULT_LR, FinetuneConfig

    parts = [HEADER,
             "## `vla train` (`TrainConfig`, vla/train/config.py)\n", keys_table(TrainConfig),
             "\n## `model.*`: the model settings of `vla train` and `vla pretrain`\n",
             "Unset keys take the chosen `size`'s value (columns), then `ModelConfig`'s "
             "default (policies/vla_model/configuration.py).\n", model_table(),
             "\n## `vla finetune` (`FinetuneConfig`, vla/train/finetune.py)\n",
             f"`lr: null` takes the method's default: {DEFAULT_LR}. `size`, `model` and "
             f"`init_from` are refused: the model is the checkpoint's.\n",
             keys_table(FinetuneConfig),
             "\n## `vla dagger` (`DaggerConfig`, vla/dagger/loop.py)\n",
             "Each round's training takes the `vla finetune` keys; these are added or "
             "differ.\n", _dagger_only(DaggerConfig, FinetuneConfig),
             "\n## `vla pretrain` (`PretrainConfig`, vla/pretrain/loop.py)\n",
             keys_table(PretrainConfig)]
    return "\n".join(parts) + "\n"


def _dagger_only(cls, base) -> str:
    table = keys_table(cls).splitlines()
    base_rows = set(keys_table(base).splitlines())
    return "\n".join(table[:2] + [r for r in table[2:] if r not in base_rows])


if __name__ == "__main__":
    print(page(), end="")
