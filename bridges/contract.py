"""The action contract: what a policy and a robot must agree on before anything moves.

It travels with every dataset (meta.json), checkpoint, and `hello` exchange. Two
contracts are compatible when every field in `MATCH_FIELDS` is equal (numbers within a
relative `FLOAT_RTOL`, so a peer that packs floats as float32 still matches); otherwise
`differences()` names each field that differs, with both values, so a bridge can
refuse to start with a message a person can act on.

Pure Python + numpy: robot computers load this without torch.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields

CONTRACT_VERSION = 1
# Numbers in MATCH_FIELDS agree when within this relative distance. float32 keeps ~7
# significant digits (0.05 travels as 0.0500000007...), so exact equality would refuse a
# peer that packs floats as float32; 1e-6 is still far below any real difference in a
# scale or a rate. Stated in docs/protocol.md.
FLOAT_RTOL = 1e-6
# Fields that must match between a policy and a robot. Normalisation statistics are
# informative (they describe the training data), not a compatibility requirement.
# Fields that describe rather than constrain (left out of the dict when unstated).
DESCRIPTIVE_FIELDS = ("state_units", "frame", "camera_poses")
MATCH_FIELDS = (
    "robot", "action_names", "action_units", "action_scale", "control_hz",
    "state_names", "cameras",
)


@dataclass(frozen=True)
class ActionContract:
    robot: str
    action_names: tuple[str, ...]
    action_units: tuple[str, ...]
    # Physical size of a normalised action of 1.0 per dimension (e.g. metres per step).
    action_scale: tuple[float, ...]
    control_hz: float
    state_names: tuple[str, ...]
    cameras: dict[str, tuple[int, int]]  # name -> (height, width)
    chunk_length: int = 1
    normalization: dict = field(default_factory=dict)  # per-dim stats, e.g. q01/q99
    version: int = CONTRACT_VERSION
    # What the numbers mean (empty = not stated; contracts written before these existed):
    state_units: tuple[str, ...] = ()  # per state dimension; compared when both state them
    frame: str = ""  # the frame of positions and the yaw reference, in words
    camera_poses: dict[str, str] = field(default_factory=dict)  # camera -> where it looks from

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, strict: bool = True) -> ActionContract:
        """Build from the dict form. `strict` refuses unknown keys (files we wrote: a typo
        must not pass); `strict=False` ignores them, as the wire protocol promises that
        new optional keys may appear in any map (docs/protocol.md, "Versions")."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"hash"})
        if unknown and strict:
            raise ValueError(f"action contract has unknown fields {unknown}; "
                             f"expected only {sorted(known)}")
        missing = [n for n in MATCH_FIELDS if n not in data]
        if missing:
            raise ValueError(f"action contract is missing fields {missing}")
        cameras = {str(k): tuple(int(x) for x in v) for k, v in dict(data["cameras"]).items()}
        return cls(
            robot=str(data["robot"]),
            action_names=tuple(data["action_names"]),
            action_units=tuple(data["action_units"]),
            action_scale=tuple(float(x) for x in data["action_scale"]),
            control_hz=float(data["control_hz"]),
            state_names=tuple(data["state_names"]),
            cameras=cameras,
            chunk_length=int(data.get("chunk_length", 1)),
            normalization=dict(data.get("normalization", {})),
            version=int(data.get("version", CONTRACT_VERSION)),
            state_units=tuple(str(u) for u in data.get("state_units", ())),
            frame=str(data.get("frame", "")),
            camera_poses={str(k): str(v) for k, v in dict(data.get("camera_poses", {})).items()},
        )

    @classmethod
    def from_dataset_meta(cls, meta: dict, stats: dict | None = None) -> ActionContract:
        """The contract a dataset's episodes were recorded under (from meta.json)."""
        spec = meta.get("robot_spec", {})
        return cls.from_dict({
            "robot": meta["robot"],
            "action_names": meta["action_names"],
            "action_units": meta["action_units"],
            "action_scale": spec.get("action_scale", [1.0] * len(meta["action_names"])),
            "control_hz": meta["control_hz"],
            "state_names": meta["state_names"],
            "cameras": meta["cameras"],
            "normalization": (stats or {}).get("action", {}),
            **{k: spec[k] for k in DESCRIPTIVE_FIELDS if k in spec},
        })

    @classmethod
    def from_env(cls, env) -> ActionContract:
        """The contract of a `sims` environment (gymnasium env or its unwrapped core)."""
        return cls.from_dict(env.unwrapped.contract_fields())

    # -- use -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = self._plain()
        data["hash"] = self.hash()
        return data

    def hash(self) -> str:
        """Short stable digest of everything in the contract (order-independent JSON)."""
        blob = json.dumps(self._plain(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def _plain(self) -> dict:
        """JSON-ready fields; descriptive fields left unstated are left out, so contracts
        written before they existed keep their hash."""
        data = asdict(self)
        data["cameras"] = {k: list(v) for k, v in self.cameras.items()}
        for name in DESCRIPTIVE_FIELDS:
            if not data[name]:
                del data[name]
        return json.loads(json.dumps(data))

    def differences(self, other: ActionContract) -> list[str]:
        """One line per mismatching field: 'field: ours=... theirs=...'. Empty if compatible."""
        lines = []
        for name in MATCH_FIELDS:
            ours, theirs = getattr(self, name), getattr(other, name)
            if not _same(_canonical(ours), _canonical(theirs)):
                lines.append(f"{name}: policy has {ours!r}, robot has {theirs!r}")
        if self.state_units and other.state_units and self.state_units != other.state_units:
            lines.append(f"state_units: policy has {self.state_units!r}, robot has "
                         f"{other.state_units!r}")
        return lines

    def warnings(self, other: ActionContract) -> list[str]:
        """Descriptions that differ where both sides state them (the frame, where each
        camera looks from): not a refusal, since words differ for the same set-up, but
        worth a look: a policy sees the world as its training camera saw it."""
        lines = []
        if self.frame and other.frame and self.frame != other.frame:
            lines.append(f"frame: policy was trained with {self.frame!r}, robot states "
                         f"{other.frame!r}")
        for name in sorted(set(self.camera_poses) & set(other.camera_poses)):
            if self.camera_poses[name] != other.camera_poses[name]:
                lines.append(f"camera {name!r}: policy's was {self.camera_poses[name]!r}, "
                             f"robot's is {other.camera_poses[name]!r}")
        return lines

    def check_compatible(self, other: ActionContract, what: str = "robot") -> None:
        diffs = self.differences(other)
        if diffs:
            raise ValueError(f"the {what}'s action contract does not match: " + "; ".join(diffs))


def _canonical(value):
    return json.loads(json.dumps(value, sort_keys=True))


def _same(a, b) -> bool:
    """Equal, with numbers compared within FLOAT_RTOL (JSON-shaped values only)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=FLOAT_RTOL, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def as_contract(spec: ActionContract | dict) -> ActionContract:
    """Accept a contract or its dict form (as `ActionContract.to_dict()` or an env gives it)."""
    return spec if isinstance(spec, ActionContract) else ActionContract.from_dict(dict(spec))
