"""The one run skeleton that `vla train`, `vla finetune`, `vla dagger` (each round's
training) and `vla pretrain` plug into:

- `directory.RunDirectory`: the run directory's checks (resume or a fresh one), recovery
  after a kill, and the staged, atomic checkpoint save;
- `steps.run_steps`: the step loop (progress, logging, TensorBoard, periodic checkpoints,
  timing) around a `Job`, which says how one step trains and what a checkpoint holds;
- `progress`: when to show a bar, and step lines when output goes to a file;
- `precision.amp_dtype`: bf16 autocast where it pays.

A command supplies only how it starts (its model, data and optimizer) and what one step
does; nothing else is copied between loops.
"""
