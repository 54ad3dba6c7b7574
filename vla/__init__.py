"""vla: the application: datasets and LeRobot interop, pretraining, training, fine-tuning
and DAgger on one run skeleton (vla/run), evaluation, the policy server and the `vla`
CLI (one module per command in vla/commands)."""

__version__ = "0.1.0"
