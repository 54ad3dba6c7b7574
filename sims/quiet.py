"""Import PyBullet without its build banner ("pybullet build time: ...").

PyBullet prints the banner from C when its module loads, into every command's output and
every worker's. `import_pybullet()` loads it with file descriptors 1 and 2 pointed at
/dev/null (flushing C's buffers before putting them back, since a pipe keeps the banner
until exit). An import error still arrives as a Python exception. `VLA_VERBOSE=1`
(`vla -v`) keeps the banner.
"""

from __future__ import annotations

import ctypes
import os
import sys


def import_pybullet() -> None:
    if "pybullet" in sys.modules or os.environ.get("VLA_VERBOSE") == "1":
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError):  # no usable descriptors (embedded interpreters)
        import pybullet  # noqa: F401
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        import pybullet  # noqa: F401

        ctypes.CDLL(None).fflush(None)  # the banner leaves C's buffers while they are null
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)
