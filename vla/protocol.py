"""Moved to `bridges/protocol.py` (the robot side ships it with `pip install ./bridges`);
this alias keeps older imports working. New code imports `bridges.protocol`."""

import sys

from bridges import protocol as _protocol

sys.modules[__name__] = _protocol  # the same module object: one set of constants
