"""The robot side: robots, safety limits, and the loop that drives them from a policy server.

- `robot.Robot`: the interface every robot implements (contract, connect, observe, act, hold,
  close); `mock_robot.py` is the annotated template for a real arm.
- `safety`: limits checked on every chunk before it runs (NaN, range, step, box, gripper).
- `client.ControlLoop`: the fixed-rate loop (chunk execution, re-query, watchdog);
  `connection.PolicyLink`: its ZeroMQ link (hello, deadlines, heartbeats, reconnects).
- `contract` and `protocol`: the action contract and the wire protocol, shared with the
  server (which imports them from here).
- `loading.load_robot`: a robot class named `package.module:Class` (`vla bridge robot`);
  `camera.OpenCVCamera`: USB/IP cameras. The sim robot is `sims.sim_robot.SimRobot`.

numpy, pyzmq, msgpack, opencv and pyyaml only: `pip install ./bridges` on a robot
computer installs this package alone (bridges/pyproject.toml), never torch.
"""
