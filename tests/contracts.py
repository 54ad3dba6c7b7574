"""sims/Pick-v0's action contract written out, so protocol and bridge tests need no simulator."""

from bridges.contract import ActionContract

PANDA_CONTRACT_DICT = {
    "robot": "panda",
    "action_names": ["dx", "dy", "dz", "dyaw", "gripper"],
    "action_units": ["m", "m", "m", "rad", "opening fraction"],
    "action_scale": [0.05, 0.05, 0.05, 0.3, 1.0],
    "control_hz": 10.0,
    "state_names": ["ee_x", "ee_y", "ee_z", "ee_yaw_sin", "ee_yaw_cos", "gripper_opening"],
    "cameras": {"front": [128, 128]},
}
PANDA_CONTRACT = ActionContract.from_dict(PANDA_CONTRACT_DICT)
