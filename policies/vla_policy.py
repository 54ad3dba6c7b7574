"""`VLAPolicy`: a checkpoint behind the `Policy` interface (infer / infer_batch / reset)."""

from __future__ import annotations

import numpy as np
import torch

from policies.api import ActionChunk, Policy
from policies.checkpoint import load_model
from policies.language import LanguageEncoder
from policies.presence import METHODS, group_maps, presence_score
from policies.quantize import check_mode, quantize_int8
from policies.vla_model.processor import InputProcessor


def pick_device(device: str = "auto", quantize: str | None = None) -> torch.device:
    """The device to run on: "auto" is CUDA when torch sees a GPU, else the CPU (and
    always the CPU for int8 quantization)."""
    if device == "auto":
        cuda = torch.cuda.is_available() and quantize in (None, "none")
        return torch.device("cuda" if cuda else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA GPU; use cpu or auto")
    return torch.device(device)


class VLAPolicy(Policy):
    def __init__(self, model, tokenizer, contract, language: LanguageEncoder,
                 device: torch.device, dtype=torch.float32) -> None:
        self.model = model
        self.cfg = model.cfg
        self.tokenizer, self.contract, self.language = tokenizer, contract, language
        self.device, self.dtype = device, dtype
        self.processor = InputProcessor(language, self.cfg.cameras, device)
        # Below this presence score, the named thing is likely not in view: calibrated on
        # held-out scenes (presence.json beside the weights; benchmarks/presence_score.py).
        self.presence_threshold: float | None = None
        # How the score reads the maps (policies/presence.py METHODS); from presence.json.
        self.presence_method = "all_maps"

    @classmethod
    def from_model(cls, model, tokenizer, contract, language, device) -> VLAPolicy:
        """Wrap a model in training (shares its weights; used for evaluation in the loop)."""
        return cls(model, tokenizer, contract, language, torch.device(device))

    @classmethod
    def from_pretrained(cls, directory, device: str = "auto", dtype: str = "auto",
                        quantize: str | None = None) -> VLAPolicy:
        """Load a checkpoint. dtype "auto" = bfloat16 on CUDA, float32 on the CPU;
        quantize "int8" = int8 dynamic quantization of the Linear layers (CPU only)."""
        dev = pick_device(device, quantize)
        quantize = check_mode(quantize, dev)
        model, info = load_model(directory, device=dev)
        if quantize == "int8":
            model, dtype = quantize_int8(model), "float32"
        if dtype == "auto":
            dtype = "bfloat16" if dev.type == "cuda" else "float32"
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
        cfg = model.cfg
        language = LanguageEncoder(cfg.language_model, cfg.language_max_tokens, dev)
        policy = cls(model, info["tokenizer"], info["contract"], language, dev, torch_dtype)
        policy.presence_threshold, method = read_presence(directory)
        if method != "all_maps" and cfg.keypoint_groups < 2:
            raise ValueError(f"{directory}/{PRESENCE_FILE}: method={method!r} needs referent "
                             f"keypoints, but model.keypoint_groups={cfg.keypoint_groups}")
        policy.presence_method = method
        policy.execute_steps = read_execution(directory, cfg.chunk_length)
        return policy

    def _check(self, obs: dict) -> None:
        for name in self.cfg.cameras:
            image = obs["images"].get(name) if isinstance(obs.get("images"), dict) else None
            expected = tuple(self.contract.cameras[name]) + (3,)
            if image is None or tuple(np.shape(image)) != expected:
                got = None if image is None else tuple(np.shape(image))
                raise ValueError(f"observation images[{name!r}] has shape {got}; "
                                 f"expected {expected} (uint8 RGB)")
        state = np.asarray(obs["state"], dtype=np.float32)
        if state.shape != (self.cfg.state_dim,) or not np.all(np.isfinite(state)):
            raise ValueError(f"observation state has shape {state.shape} (finite values "
                             f"required); expected ({self.cfg.state_dim},)")

    @torch.no_grad()
    def infer_batch(self, observations: list[dict]) -> list[ActionChunk]:
        for obs in observations:
            self._check(obs)
        inputs = self.processor.observations(observations)
        with torch.autocast(self.device.type, dtype=self.dtype,
                            enabled=self.dtype != torch.float32):
            # tokens (B, K * A); heat: per camera (B, K, h, w) when the model has keypoints
            tokens, heat = self.model.generate(*inputs)
        tokens = tokens.view(len(observations), self.cfg.chunk_length, self.cfg.action_dim)
        actions = np.clip(self.tokenizer.decode(tokens.cpu().numpy()), -1.0, 1.0)
        presence = (torch.stack([presence_score(h, self.presence_method,
                                                 self.cfg.keypoint_groups)
                                  for h in heat]).mean(0).tolist()
                     if heat else [None] * len(actions))  # (B,)
        maps = (group_maps(heat[0], max(self.cfg.keypoint_groups, 1)).cpu().numpy()
                if heat else [None] * len(actions))  # (B, G, h, w)
        return [ActionChunk(a, self.contract.control_hz, presence=g, heat=m)
                for a, g, m in zip(actions, presence, maps, strict=True)]

    def infer(self, observation: dict) -> ActionChunk:
        return self.infer_batch([observation])[0]

    def warm_up(self) -> None:
        """One inference on a blank observation: the first call pays for kernel selection
        and allocations, which a robot should not wait for."""
        images = {name: np.zeros((*self.contract.cameras[name], 3), np.uint8)
                  for name in self.cfg.cameras}
        self.infer({"images": images, "state": np.asarray(self.model.state_mean.cpu()),
                    "instruction": "warm up"})


PRESENCE_FILE = "presence.json"
LEGACY_PRESENCE_FILE = "grounding.json"  # its name in checkpoints before 2026-12
EXECUTION_FILE = "execution.json"


def read_execution(directory, chunk_length: int) -> int | None:
    """`execute_steps` from DIR/execution.json (benchmarks/execute_steps.py --write), or
    None (run whole chunks) when there is no such file or it says null."""
    import json
    from pathlib import Path

    path = Path(directory) / EXECUTION_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON ({err})") from None
    if not isinstance(record, dict) or "execute_steps" not in record:
        raise ValueError(f"{path}: expected {{\"execute_steps\": number or null, ...}} as "
                         f"benchmarks/execute_steps.py --write writes it")
    value = record["execute_steps"]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= chunk_length:
        raise ValueError(f"{path}: execute_steps={value!r}; expected null or a whole number "
                         f"from 1 to the chunk length {chunk_length}")
    return value


def read_presence(directory) -> tuple[float | None, str]:
    """The calibrated threshold in DIR/presence.json (None when there is none) and the
    method it was calibrated for (policies/presence.py METHODS; "all_maps" unless the file
    says otherwise). Older checkpoints name the file grounding.json and the method
    "score"; both are read."""
    import json
    from pathlib import Path

    path = Path(directory) / PRESENCE_FILE
    if not path.is_file():
        path = Path(directory) / LEGACY_PRESENCE_FILE
    if not path.is_file():
        return None, "all_maps"
    record = json.loads(path.read_text())
    try:
        threshold = float(record["threshold"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: expected {{\"threshold\": number, ...}} as "
                         f"benchmarks/presence_score.py --write writes it") from None
    method = record.get("method", record.get("score", "all_maps"))
    if method not in METHODS:
        raise ValueError(f"{path}: method={method!r}; expected one of {', '.join(METHODS)}")
    return threshold, method
