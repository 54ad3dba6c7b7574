"""`finetune()`: adapt a trained checkpoint to new demonstrations (`vla finetune`).

The training loop is `vla train`'s (vla/train/loop.py: progress, TensorBoard, atomic
checkpoints, exact --resume, DDP, evaluation at the end); what differs is the `Start`:

- full:            every weight of the checkpoint trains;
- frozen-encoders: the vision encoder, its projection and keypoints stay frozen (the language
                   encoder always is);
- lora:            peft LoRA matrices in the trunk (and the ViT with lora_vision=true) plus
                   the action head train; RUN/checkpoint is then a small adapter directory
                   (policies/adapters.py) tied to its base, and `--merge` also writes a
                   standalone checkpoint to RUN/merged.

When the data's action contract differs from the checkpoint's (another robot), the
tokenizer, state statistics and, if the dimensions differ, the action positions and head
are rebuilt first (vla/train/rebuild.py); the command says what it rebuilt.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from vla.train.config import PolicyTrainingConfig

METHODS = ("full", "frozen-encoders", "lora")
DEFAULT_LR = {"full": 1e-4, "frozen-encoders": 2e-4, "lora": 1e-3}
FROZEN_ENCODERS = ("vision.", "vision_proj.", "keypoints.")
LORA_KEY = "finetune"  # peft's name for the adapter inside the model while training
PROVENANCE = "finetune.json"


@dataclass
class FinetuneConfig(PolicyTrainingConfig):
    """`PolicyTrainingConfig` with fine-tuning's defaults and its method; the model is the
    checkpoint's, so `vla train`'s `size`, `model` and `init_from` have no place here."""

    # Keys of `vla train` that a fine-tune refuses, and why (policies/dataclass_io.py).
    MISPLACED = dict.fromkeys(("size", "model", "init_from"),
                              "model settings do not apply to fine-tuning; the model, its "
                              "settings and weights, is the checkpoint's (--checkpoint)")

    checkpoint: str = ""  # checkpoint or run directory; "" = the shipped default policy
    method: str = "lora"  # full | frozen-encoders | lora
    lr: float | None = None  # None = the method's default (DEFAULT_LR)
    steps: int = 1000
    batch_size: int = 32
    warmup_steps: int = 50
    checkpoint_every: int = 250
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    lora_vision: bool = False  # also adapt the vision encoder's Linear layers
    adapter_name: str = ""  # the name robots ask for; "" = the run directory's name
    # true: give the checkpoint's keypoints a location prior if they have none
    # (policies/vla_model/keypoints.py LocationPrior; zero-initialised, so training starts from the
    # checkpoint's behaviour).
    location_prior: bool = False
    # true: give the checkpoint the sentence token (model.sentence_token) if it has none;
    # its projection starts at zero.
    sentence_token: bool = False
    # false: the trunk stops reading the instruction's token features
    # (model.language_tokens); the sentence token then carries the command.
    language_tokens: bool = True
    # true: give the checkpoint the referent-word tokens (model.referent_words) if it has
    # none; their projection starts at zero.
    referent_words: bool = False

    def validate(self) -> None:
        super().validate()
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}; expected one of {list(METHODS)}")
        if self.lora_rank < 1 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_rank={self.lora_rank}, lora_alpha={self.lora_alpha}, "
                             f"lora_dropout={self.lora_dropout}; expected rank >= 1, "
                             f"alpha > 0 and 0 <= dropout < 1")
        if self.grounding_data and self.method != "full":
            raise ValueError(f"grounding_data needs method='full': with method="
                             f"{self.method!r} the stem and keypoints are frozen and the "
                             f"grounding loss would train nothing")
        if self.location_prior and self.method != "full":
            raise ValueError(f"location_prior=true needs method='full': with method="
                             f"{self.method!r} the keypoints are frozen and the new prior "
                             f"would not train")
        reshaped = [setting for setting, on in (
            ("sentence_token=true", self.sentence_token),
            ("referent_words=true", self.referent_words),
            ("language_tokens=false", not self.language_tokens)) if on]
        if reshaped and self.method == "lora":
            raise ValueError(f"{reshaped[0]} needs method='full' or 'frozen-encoders': with "
                             f"method='lora' only the adapters and the head train, so a new "
                             f"token's projection would stay at zero and the trunk could not "
                             f"learn to read the command another way")


def finetune(cfg: FinetuneConfig, out: str, resume: bool = False,
             progress: bool | None = None, device: str = "auto",
             stop_after: int | None = None, merge: bool = False) -> dict:
    """Fine-tune `cfg.checkpoint` on `cfg.data` into the run directory `out`."""
    from policies.registry import is_adapter, resolve_checkpoint
    from vla.train.loop import train

    if merge and cfg.method != "lora":
        raise ValueError(f"--merge folds a LoRA adapter into its base; method={cfg.method!r} "
                         f"already writes a standalone checkpoint")
    base_dir = resolve_checkpoint(cfg.checkpoint or None)
    if is_adapter(base_dir):
        raise ValueError(f"--checkpoint {base_dir} is a LoRA adapter; fine-tune a full "
                         f"checkpoint (fold the adapter in first: `vla finetune merge "
                         f"{base_dir} --out DIR`)")
    if cfg.lr is None:
        cfg = dataclasses.replace(cfg, lr=DEFAULT_LR[cfg.method])
    name = cfg.adapter_name or Path(out).resolve().name
    summary = train(cfg, out, resume=resume, progress=progress, device=device,
                    stop_after=stop_after, start=partial(_start, base_dir=base_dir, name=name))
    if merge and summary["steps"] == cfg.steps and _main_process():
        from policies.adapters import merge_adapter

        summary["merged"] = str(merge_adapter(Path(out) / "checkpoint", Path(out) / "merged",
                                              base_dir))
        (Path(out) / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _start(cfg: FinetuneConfig, resume_dir: Path | None, dev: torch.device, *,
           base_dir: Path, name: str):
    """The loop's `Start` for a fine-tune (see the module doc)."""
    from policies.adapters import base_identity, is_adapter
    from policies.language import LanguageEncoder
    from vla.train.loop import Start

    lora = cfg.method == "lora"
    if resume_dir is not None and lora != is_adapter(resume_dir):
        raise ValueError(f"--resume: {resume_dir} was not written by method={cfg.method!r}; "
                         f"resume with the method the run started with")
    base = base_identity(base_dir)
    model, info, tokenizer, contract, differences, rebuilt = _load(cfg, resume_dir, base_dir)
    language = LanguageEncoder(model.cfg.language_model, model.cfg.language_max_tokens, dev)
    if cfg.method == "frozen-encoders":
        for n, p in model.named_parameters():
            p.requires_grad_(not n.startswith(FROZEN_ENCODERS))
    if lora:
        tokenizer, contract, rebuilt, save = _with_lora(cfg, model, resume_dir, base, name,
                                                        tokenizer, contract, differences,
                                                        rebuilt)
    else:
        save = _full_save(cfg, model, info, tokenizer, contract, base, differences, rebuilt)
    total = sum(p.numel() for p in model.parameters())
    summary = {"method": cfg.method, "base": base["path"], "rebuilt": rebuilt,
               "contract": contract.robot, "total_parameters": total}
    if lora:
        summary["adapter"] = name
    return Start(model, tokenizer, contract, language, save, summary)


def _load(cfg: FinetuneConfig, resume_dir: Path | None, base_dir: Path):
    """The model to train, its checkpoint info, tokenizer and contract, and what differed
    from the data and was rebuilt: the run's own checkpoint when resuming a full or
    frozen-encoders run; otherwise the base, fitted to the data and reshaped as `cfg`
    asks (a fresh run) or as it is (a LoRA resume: the adapter holds what changed)."""
    from policies.checkpoint import load_model
    from vla.train.rebuild import fit_to_data

    lora = cfg.method == "lora"
    if resume_dir is not None and not lora:  # the run's own checkpoint: nothing to refit
        model, info = load_model(resume_dir)
        provenance = json.loads((resume_dir / PROVENANCE).read_text())
        return (model, info, info["tokenizer"], info["contract"], provenance["differences"],
                provenance["rebuilt"])
    model, info = load_model(base_dir)
    tokenizer, contract = info["tokenizer"], info["contract"]
    if resume_dir is not None:
        return model, info, tokenizer, contract, [], []
    refit = fit_to_data(model, tokenizer, contract, cfg.data, cfg.tokenizer_mode,
                        reshape_ok=not lora)
    _report(base_dir, cfg.method, refit.differences, refit.rebuilt)
    rebuilt = [*refit.rebuilt, *_reshape(cfg, model)]
    return model, info, refit.tokenizer, refit.contract, refit.differences, rebuilt


def _reshape(cfg: FinetuneConfig, model) -> list[str]:
    """Give the checkpoint the inputs `cfg` asks for and it lacks (each new projection
    starts at zero, so training starts from the checkpoint's behaviour); returns what
    was changed, for the provenance record."""
    from policies.vla_model.surgery import (
        add_location_prior,
        add_referent_words,
        add_sentence_token,
        drop_language_tokens,
    )

    surgery = (  # (asked, change, record in finetune.json, what the command says)
        (cfg.location_prior, add_location_prior,
         "keypoints: a location prior added (zero-initialised)",
         "added a location prior to the keypoints (model.location_prior)"),
        (cfg.sentence_token, add_sentence_token,
         "a sentence token added (zero-initialised)",
         "added the sentence token (model.sentence_token)"),
        (cfg.referent_words, add_referent_words,
         "referent-word tokens added (zero-initialised)",
         "added the referent-word tokens (model.referent_words)"),
        (not cfg.language_tokens, drop_language_tokens,
         "the instruction's tokens removed from the trunk",
         "the trunk no longer reads the instruction's tokens (model.language_tokens=false)"),
    )
    done = []
    for asked, change, record, said in surgery:
        if asked and change(model):
            done.append(record)
            if _main_process():
                print(f"finetune: {said}", file=sys.stderr)
    return done


def _with_lora(cfg: FinetuneConfig, model, resume_dir: Path | None, base: dict, name: str,
               tokenizer, contract, differences: list[str], rebuilt: list[str]):
    """LoRA matrices in the model (fresh, or the run's adapter when resuming), the head
    trainable; returns the tokenizer, contract and record the adapter carries, and how
    the adapter is saved."""
    from policies.adapters import (
        add_lora,
        copy_into,
        load_adapter,
        lora_settings,
        lora_targets,
        save_adapter,
    )

    overrides = ["head.weight", "head.bias"]
    if resume_dir is not None:
        loaded = load_adapter(model, resume_dir, LORA_KEY, base)
        copy_into(model, loaded["overrides"])
        tokenizer, contract = loaded["tokenizer"], loaded["contract"]
        settings, overrides = loaded["config"]["lora"], loaded["config"]["overrides"]
        rebuilt = loaded["config"]["rebuilt"]
    else:
        settings = lora_settings(lora_targets(model, cfg.lora_vision), cfg.lora_rank,
                                 cfg.lora_alpha, cfg.lora_dropout)
        add_lora(model, LORA_KEY, settings)
        if differences:  # a new robot: its state statistics travel with the adapter
            overrides += ["state_mean", "state_std"]
    model.head.requires_grad_(True)

    def save(directory: Path) -> None:
        save_adapter(directory, model, LORA_KEY, name=name, lora=settings, base=base,
                     tokenizer=tokenizer, contract=contract, overrides=overrides,
                     rebuilt=rebuilt)

    return tokenizer, contract, rebuilt, save


def _full_save(cfg: FinetuneConfig, model, info: dict, tokenizer, contract, base: dict,
               differences: list[str], rebuilt: list[str]):
    """How a full or frozen-encoders fine-tune saves: a standalone checkpoint with its
    provenance (finetune.json)."""
    from policies.checkpoint import save_pretrained

    record = {"method": cfg.method, "base": base, "differences": differences,
              "rebuilt": rebuilt}
    blob = (json.dumps(record, indent=1) + "\n").encode()
    language_width = info["config"]["language_width"]

    def save(directory: Path) -> None:
        save_pretrained(directory, model, tokenizer, contract, language_width,
                        extra_files={PROVENANCE: blob})

    return save


def _report(base_dir: Path, method: str, differences: list[str], rebuilt: list[str]) -> None:
    if not _main_process():
        return
    if not differences:
        print(f"finetune ({method}): the data matches the action contract of {base_dir}; "
              f"tokenizer, head and contract kept", file=sys.stderr)
        return
    print(f"finetune ({method}): the data's action contract differs from {base_dir}'s:",
          file=sys.stderr)
    for line in differences:
        print(f"  {line}", file=sys.stderr)
    print("rebuilt for the new contract (encoders and trunk keep their weights):",
          file=sys.stderr)
    for line in rebuilt:
        print(f"  {line}", file=sys.stderr)


def _main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
