"""Action tokenizer: per-dimension bins over a range fitted on the data (numpy only).

Each normalised action dimension is clipped to [q01, q99] of the training data and cut
into `n_bins` uniform bins (as OpenVLA does), or into bins with quantile edges (each
bin holds about the same share of the data). A token is a bin index; decoding returns
the bin's centre. A chunk of K actions of A dimensions is K * A tokens, step-major.

Saved as a small versioned JSON artifact (`action_tokenizer.json`) next to a checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOKENIZER_VERSION = 1
FILENAME = "action_tokenizer.json"
MODES = ("uniform", "quantile")


@dataclass
class ActionTokenizer:
    edges: np.ndarray  # float64 (A, n_bins + 1), increasing per dimension
    action_names: tuple[str, ...]
    mode: str = "uniform"

    @property
    def n_bins(self) -> int:
        return self.edges.shape[1] - 1

    @property
    def action_dim(self) -> int:
        return self.edges.shape[0]

    @property
    def centers(self) -> np.ndarray:
        return (self.edges[:, 1:] + self.edges[:, :-1]) / 2  # (A, n_bins)

    # -- fitting ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, actions: np.ndarray, action_names, n_bins: int = 256, mode: str = "uniform",
            clip_quantiles: tuple[float, float] = (0.01, 0.99)) -> ActionTokenizer:
        """Fit bins on actions (N, A). Uniform: between the clip quantiles; quantile: edges
        at evenly spaced quantiles (repeated values merge, so edges are nudged apart)."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or len(actions) == 0:
            raise ValueError(f"actions have shape {actions.shape}; expected (N, A) with N >= 1")
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; expected one of {MODES}")
        if n_bins < 2:
            raise ValueError(f"n_bins={n_bins}; expected at least 2")
        lo = np.quantile(actions, clip_quantiles[0], axis=0)
        hi = np.quantile(actions, clip_quantiles[1], axis=0)
        edges = []
        for d in range(actions.shape[1]):
            a, b = lo[d], hi[d]
            if b - a < 1e-6:  # a constant dimension still needs a usable range
                a, b = a - 1e-3, b + 1e-3
            if mode == "uniform":
                e = np.linspace(a, b, n_bins + 1)
            else:
                inside = np.clip(actions[:, d], a, b)
                e = np.quantile(inside, np.linspace(0, 1, n_bins + 1))
                e = np.maximum.accumulate(e + np.arange(n_bins + 1) * 1e-9)
            edges.append(e)
        return cls(np.stack(edges), tuple(action_names), mode)

    # -- use --------------------------------------------------------------------------------
    def encode(self, actions: np.ndarray) -> np.ndarray:
        """(..., A) float -> (..., A) int64 bin indices; values outside the range clip."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape[-1] != self.action_dim:
            raise ValueError(f"actions have last dimension {actions.shape[-1]}; "
                             f"expected {self.action_dim} ({', '.join(self.action_names)})")
        if not np.all(np.isfinite(actions)):
            raise ValueError("actions contain NaN or inf; cannot tokenize")
        tokens = np.empty(actions.shape, dtype=np.int64)
        for d in range(self.action_dim):
            inner = self.edges[d, 1:-1]  # n_bins - 1 interior edges
            tokens[..., d] = np.searchsorted(inner, actions[..., d], side="right")
        return tokens

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """(..., A) bin indices -> (..., A) float32 bin centres. Invalid tokens raise."""
        tokens = np.asarray(tokens)
        if tokens.shape[-1] != self.action_dim:
            raise ValueError(f"tokens have last dimension {tokens.shape[-1]}; "
                             f"expected {self.action_dim}")
        if not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"tokens have dtype {tokens.dtype}; expected integers")
        bad = (tokens < 0) | (tokens >= self.n_bins)
        if bad.any():
            raise ValueError(f"{int(bad.sum())} tokens are outside 0..{self.n_bins - 1}, "
                             f"e.g. {int(tokens[bad].flat[0])}; refusing to guess an action")
        centers = self.centers
        out = np.empty(tokens.shape, dtype=np.float32)
        for d in range(self.action_dim):
            out[..., d] = centers[d][tokens[..., d]]
        return out

    def report(self, actions: np.ndarray) -> dict:
        """Round-trip error per dimension (mean, max) and bin occupancy on `actions` (N, A)."""
        actions = np.asarray(actions, dtype=np.float64)
        tokens = self.encode(actions)
        error = np.abs(self.decode(tokens) - actions)
        dims = {}
        for d, name in enumerate(self.action_names):
            counts = np.bincount(tokens[:, d], minlength=self.n_bins)
            dims[name] = {
                "mean_abs_error": float(error[:, d].mean()),
                "max_abs_error": float(error[:, d].max()),
                "bins_used": int((counts > 0).sum()),
                "most_used_share": float(counts.max() / len(actions)),
                "clipped_share": float(((actions[:, d] < self.edges[d, 0])
                                        | (actions[:, d] > self.edges[d, -1])).mean()),
                "range": [float(self.edges[d, 0]), float(self.edges[d, -1])],
            }
        return {"n_bins": self.n_bins, "mode": self.mode, "samples": len(actions),
                "dimensions": dims}

    # -- artifact ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = {"version": TOKENIZER_VERSION, "mode": self.mode, "n_bins": self.n_bins,
                "action_names": list(self.action_names)}
        if self.mode == "uniform":  # two numbers per dimension are enough
            data["low"] = self.edges[:, 0].tolist()
            data["high"] = self.edges[:, -1].tolist()
        else:
            data["edges"] = self.edges.tolist()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ActionTokenizer:
        version = data.get("version")
        if version != TOKENIZER_VERSION:
            raise ValueError(f"action tokenizer version={version!r}; expected "
                             f"{TOKENIZER_VERSION} (re-fit it with this release)")
        mode, n_bins = data.get("mode"), int(data.get("n_bins", 0))
        if mode == "uniform":
            edges = np.stack([np.linspace(lo, hi, n_bins + 1)
                              for lo, hi in zip(data["low"], data["high"], strict=True)])
        elif mode == "quantile":
            edges = np.asarray(data["edges"], dtype=np.float64)
        else:
            raise ValueError(f"action tokenizer mode={mode!r}; expected one of {MODES}")
        return cls(edges, tuple(data["action_names"]), mode)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILENAME
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ActionTokenizer:
        path = Path(directory) / FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: expected the action tokenizer saved "
                                    f"with the checkpoint")
        return cls.from_dict(json.loads(path.read_text()))
