"""Moved to `bridges/contract.py` (the robot side ships it with `pip install ./bridges`);
this alias keeps older imports working. New code imports `bridges.contract`."""

from bridges.contract import *  # noqa: F401,F403
from bridges.contract import CONTRACT_VERSION, FLOAT_RTOL, MATCH_FIELDS  # noqa: F401
