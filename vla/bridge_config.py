"""The options of `vla bridge` beside the control loop's own (`bridges.client.LoopConfig`):
the robot side's CurveZMQ key files, and a run of each robot kind. Each field with a help
text is a flag (vla/config.py's `add_flags`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vla.commands.collect import parse_cameras


@dataclass
class CurveKeyFiles:
    """The `vla keys` files that turn on CurveZMQ: both or neither (also `vla command`'s)."""

    server_key: str | None = field(default=None, metadata={
        "help": "the server's public .key (CurveZMQ; with --client-key)", "metavar": "FILE"})
    client_key: str | None = field(default=None, metadata={
        "help": "this robot's .key_secret (CurveZMQ; from `vla keys`)", "metavar": "FILE"})

    def validate(self) -> None:
        if bool(self.server_key) != bool(self.client_key):
            raise ValueError(f"server_key={self.server_key!r}, client_key={self.client_key!r}"
                             f"; expected both (the server's public .key and this robot's "
                             f".key_secret) or neither")

    def keys(self):
        """The loaded `bridges.connection.CurveKeys`, or None without key files."""
        from bridges.connection import CurveKeys

        return CurveKeys.from_files(self.server_key, self.client_key) if self.server_key \
            else None


@dataclass
class BridgeRun:
    """What a run of every robot kind has."""

    connect: str = field(default="tcp://127.0.0.1:5555", metadata={
        "help": "policy server address"})


@dataclass
class SimRun(BridgeRun):
    """`vla bridge sim`: episodes of a sims task."""

    task: str = field(default="sims/Pick-v0", metadata={"help": "task id or name (`vla envs`)"})
    seed: int = field(default=0, metadata={"help": "seed of the first episode"})
    episodes: int = field(default=1, metadata={"help": "episodes, seeds S, S+1, ..."})
    split: str = field(default="L1", metadata={"help": "generalisation split"})
    max_steps: int | None = field(default=None, metadata={
        "help": "end an episode after this many steps (default: the task's own limit)"})
    video: str | None = field(default=None, metadata={
        "help": "write every episode to this mp4", "metavar": "FILE"})
    cameras: tuple[str, ...] = field(default=("front",), metadata={
        "help": "views the sim robot sends, as the policy's contract names them: front "
                "(default) or front,wrist", "type": parse_cameras})
    json: bool = field(default=False, metadata={"help": "print one JSON object at the end"})

    def validate(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes={self.episodes}; expected at least 1")


@dataclass
class RobotRun(BridgeRun):
    """`vla bridge robot`: the control loop of a Robot class (its CLASS and KEY=VALUE
    arguments are positional, added by hand)."""

    instruction: str | None = field(default=None, metadata={
        "help": "what the policy is told (default: the robot's own "
                "observation['instruction'])"})
    steps: int | None = field(default=None, metadata={
        "help": "control ticks to run (default: until Ctrl-C)"})
    print_contract: bool = field(default=False, metadata={
        "help": "print the robot's half of the action contract as JSON (for `vla serve "
                "--contract`) and exit without connecting"})
    json: bool = field(default=False, metadata={"help": "print the run summary as JSON"})

    def validate(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps={self.steps}; expected at least 1")
