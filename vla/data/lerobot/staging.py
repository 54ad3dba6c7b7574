"""Write a directory beside its final place and rename it there when complete.

`os.rename` of a directory is atomic on POSIX within one file system, which is why the
staging directory lives beside OUT (same parent, so same file system) and not in /tmp:
a crash or Ctrl-C leaves at worst a hidden `.OUT.partial-<pid>` and never a half OUT
that a reader would take for a dataset.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def refuse_existing(out: str | Path, what: str) -> Path:
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"--out {str(out)!r} already exists; {what} writes a new "
                              f"directory: choose another --out, or remove it first")
    return out


@contextmanager
def staged_dir(out: str | Path, what: str) -> Iterator[Path]:
    """Yield an empty staging directory; on success it becomes `out`, on error it goes."""
    out = refuse_existing(out, what)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)  # a leftover of a killed run with our pid
    stage.mkdir()
    try:
        yield stage
        refuse_existing(out, what)  # someone else may have written it meanwhile
        os.rename(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
