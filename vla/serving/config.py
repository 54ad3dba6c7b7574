"""`ServeConfig`: what `vla serve` serves and where it runs (the socket and batching are
`server.ServerConfig`'s). Each field with a help text is a flag of `vla serve`
(vla/config.py's `add_flags`)."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_POLICY = "the shipped default policy, or builtin:hold without one"


@dataclass
class ServeConfig:
    checkpoint: str | None = field(default=None, metadata={
        "help": "checkpoint directory to serve", "exclusive": "policy"})
    policy: str | None = field(default=None, metadata={
        "help": f"policy spec, e.g. builtin:hold or builtin:random (default {DEFAULT_POLICY} "
                f"when no --checkpoint)", "exclusive": "policy"})
    task: str = field(default="sims/Pick-v0", metadata={
        "help": "task whose action contract a builtin policy uses"})
    contract: str | None = field(default=None, metadata={
        "help": "a builtin policy serves this action contract instead of --task's (JSON, "
                "e.g. from `vla bridge robot CLASS --print-contract`): bring-up of a robot "
                "of your own", "metavar": "FILE"})
    device: str = field(default="auto", metadata={
        "help": "where the policy runs (default auto: cuda when available)",
        "choices": ("auto", "cpu", "cuda")})
    seed: int = field(default=0, metadata={"help": "seed of builtin:random"})
    threads: int | None = field(default=None, metadata={
        "help": "CPU threads for inference (default: torch's, one per core). With the robot "
                "on the same machine, leave it a core: --threads 1 on 2 cores",
        "metavar": "N"})
    adapters: list[str] | None = field(default=None, metadata={
        "help": "LoRA adapters of the served checkpoint (from `vla finetune --method lora`): "
                "adapter or run directories, or folders of them; a robot picks one by name "
                "in `hello` or per `act`. Adapters added to these folders later are found "
                "when a client names them (no restart)", "metavar": "DIR"})
    quantize: str = field(default="none", metadata={
        "help": "int8: dynamic int8 quantization of the Linear layers, for CPU inference",
        "choices": ("none", "int8")})

    def validate(self) -> None:
        if self.checkpoint and self.policy:
            raise ValueError(f"checkpoint={self.checkpoint!r}, policy={self.policy!r}; "
                             f"expected one of them")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads={self.threads}; expected at least 1")
