"""The SO-101 twin's tracking and rendering, against PyBullet's IK and the Panda.

IK: a random walk of 2 cm steps of the tool over the twin's board, between 1 and 5 cm
up, pointing down at a random yaw. Each step is solved from the last solution and the
arm driven there for one control tick (24 physics steps); the error is the distance
from the asked point to where the tool is (after the tick, and the solve's own
residual). The baseline is PyBullet's `calculateInverseKinematics` with the suite's 20
iterations on the same walk, to the same point and orientation.

Rendering: milliseconds per front-camera frame at 128 x 128 of the twin's scene and of
the Panda's, in the same process.

    python benchmarks/so101_twin.py --steps 300 > results/so101/twin.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time

import numpy as np


def _walk(steps: int, seed: int, ws) -> list[tuple[np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    low = np.array([*ws.board_low, 0.01])
    high = np.array([*ws.board_high, 0.05])
    pos, out = (low + high) / 2, []
    for _ in range(steps):
        step = rng.normal(size=3)
        pos = np.clip(pos + 0.02 * step / np.linalg.norm(step), low, high)
        out.append((pos.copy(), float(rng.uniform(-math.pi / 2, math.pi / 2))))
    return out


def _track(env, walk, solver: str) -> dict:
    """Errors (mm) of one solver along `walk`: after one control tick, and the solve's."""
    robot, p = env.robot, env.p
    reached, residual, solve_s = [], [], []
    for pos, yaw in walk:
        start = time.perf_counter()
        if solver == "ours":
            robot.move_to(pos, yaw, 1.0)
            q = robot._last
        else:  # PyBullet's IK on the tool link, the suite's settings
            orn = p.getQuaternionFromEuler([math.pi, 0.0, yaw])
            q = np.array(p.calculateInverseKinematics(
                robot.body, robot.ee_link, pos.tolist(), orn, maxNumIterations=20,
                residualThreshold=1e-4)[:5])
            p.setJointMotorControlArray(robot.body, list(robot.arm_joints),
                                        p.POSITION_CONTROL, targetPositions=q.tolist(),
                                        forces=[robot.arm_force] * 5, positionGains=[0.3] * 5)
        solve_s.append(time.perf_counter() - start)
        # PyBullet's IK aims the URDF's frame link, ours the tool point: judge each on its own.
        aimed = robot.chain.forward(q) if solver == "ours" else _frame_pose(robot, q)
        residual.append(np.linalg.norm(aimed[:3, 3] - pos))
        for _ in range(env.substeps):
            p.stepSimulation()
        q_now = np.array([p.getJointState(robot.body, j)[0] for j in robot.arm_joints])
        now = robot.chain.forward(q_now) if solver == "ours" else _frame_pose(robot, q_now)
        reached.append(np.linalg.norm(now[:3, 3] - pos))
    mm = 1000.0
    return {
        "after_tick_mm": {"median": float(np.median(reached) * mm),
                          "p90": float(np.percentile(reached, 90) * mm),
                          "max": float(np.max(reached) * mm)},
        "solve_residual_mm": {"median": float(np.median(residual) * mm),
                              "max": float(np.max(residual) * mm)},
        "solve_ms": {"median": float(np.median(solve_s) * 1000),
                     "p90": float(np.percentile(solve_s, 90) * 1000)},
    }


def _frame_pose(robot, q) -> np.ndarray:
    from bridges.kinematics import Chain
    from sims.so101 import URDF
    chain = getattr(_frame_pose, "chain", None) or Chain(URDF, "gripper_frame_link")
    _frame_pose.chain = chain
    return chain.forward(q)


def _render_ms(robot: str, frames: int) -> float:
    from sims.env import TabletopEnv

    env = TabletopEnv(task="pick", robot=robot, image_size=128)
    env.reset(seed=0)
    camera = env.cameras[0]
    camera.render()  # warm
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        camera.render()
        times.append(time.perf_counter() - start)
    env.close()
    return float(np.median(times) * 1000)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="steps of the random walk")
    ap.add_argument("--frames", type=int, default=100, help="frames timed per scene")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from sims.env import TabletopEnv
    from sims.so101 import SO101_WORKSPACE

    result = {"benchmark": "so101_twin", "steps": args.steps, "step_m": 0.02,
              "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}"}
    walk = _walk(args.steps, args.seed, SO101_WORKSPACE)
    for solver in ("ours", "pybullet_ik_20"):
        env = TabletopEnv(task="touch", robot="so101", random_start=False)
        env.reset(seed=0)
        result[solver] = _track(env, walk, solver)
        env.close()
    result["render_128_ms"] = {"so101": _render_ms("so101", args.frames),
                               "panda": _render_ms("panda", args.frames)}
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
