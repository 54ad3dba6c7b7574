"""The robot side: robots, safety limits, and the loop that drives them from a policy server.

- `robot.Robot`: the interface every robot implements (spec, connect, observe, act, hold,
  close); `mock_robot.py` is the annotated template for a real arm.
- `safety`: limits checked on every chunk before it runs (NaN, range, step, box, gripper).
- `client.ControlLoop`: the fixed-rate loop (chunk execution, re-query, watchdog);
  `connection.PolicyLink`: its ZeroMQ link (hello, deadlines, heartbeats, reconnects).
- `sim_robot.SimRobot`: a `sims` task as a robot; `camera.OpenCVCamera`: USB/IP cameras.

numpy, pyzmq, msgpack and opencv only (plus `vla.protocol`); `sim_robot` alone imports
the simulator. A robot computer never needs torch.
"""
