"""One observation and its action contract in a file, for benchmarks run without the simulator.

A GPU machine may have torch but no PyBullet: write a task's first frame where the
simulator runs (`serve_latency.py --save-frame F`), then pass `--frame F` there. The file
is one msgpack map in the wire protocol's array encoding (no pickle).
"""

from __future__ import annotations

import msgpack

from bridges import protocol
from bridges.contract import ActionContract


def save_frame(path: str, contract: ActionContract, obs: dict) -> None:
    message = {"contract": contract.to_dict(), "instruction": obs["instruction"],
               "images": {k: protocol.encode_image(v) for k, v in obs["images"].items()},
               "state": protocol.encode_array(obs["state"])}
    with open(path, "wb") as f:
        f.write(protocol.pack(message))


def load_frame(path: str) -> tuple[ActionContract, dict]:
    """(contract, observation) as the simulator's `reset` would have given them."""
    with open(path, "rb") as f:
        data = msgpack.unpackb(f.read(), raw=False)
    obs = {"images": {k: protocol.decode_image(v) for k, v in data["images"].items()},
           "state": protocol.decode_array(data["state"]), "instruction": data["instruction"]}
    return ActionContract.from_dict(data["contract"]), obs
