"""Every simulated arm of the suite, by the name `TabletopEnv(robot=...)` takes."""

from __future__ import annotations

from sims.robots import KukaArm, PandaArm, SimArm
from sims.so101 import SO101Arm

ROBOTS: dict[str, type[SimArm]] = {"panda": PandaArm, "kuka": KukaArm, "so101": SO101Arm}
