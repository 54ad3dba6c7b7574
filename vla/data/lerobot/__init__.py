"""LeRobot datasets in and out: `vla dataset export --format lerobot` and `vla dataset import`.

Our field             LeRobot field (v3.0, also read from v2.1)
--------------------  -----------------------------------------------------------------
images/<camera>       observation.images.<camera>   (dtype video: one mp4 stream per camera)
state                 observation.state             (float32, names = meta.json state_names)
action                action                        (float32, names = meta.json action_names)
executed_action       executed_action               (float32; what the env executed)
attrs instruction     task (meta/tasks.parquet)  -> task_index per frame
step t                frame_index, timestamp = t / control_hz
episode order         episode_index (sorted file order, as `vla dataset info` counts)
meta.json robot       info.json robot_type;  control_hz -> fps
meta.json, contract   info.json "vla" (ours alone; LeRobot ignores keys it does not know)
attrs split, seed...  per-episode columns vla/split, vla/seed, vla/env_id, vla/attrs (JSON)

- `layout`: paths, info.json and features, the shared constants.
- `parquet`: the few pyarrow conversions both directions need.
- `video`: PyAV encoding of episodes into one stream, and decoding frames back by time.
- `stats`: LeRobot-style statistics (min/max/mean/std/count/quantiles).
- `export` and `reader` + `importer`: the two directions.
- `staging`: the output appears complete or not at all.

Nothing heavy is imported here: `vla dataset info` never pays for PyAV or pyarrow.
"""
