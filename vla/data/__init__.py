"""Demonstration datasets: collect expert episodes, store them crash-safely, read them back.

- `store`: the dataset directory (meta.json, stats.json, episodes/, tmp/) and its checks.
- `episode_file`: one episode <-> one HDF5 file.
- `stats`: per-dimension statistics of actions and states (q01/q99 for the tokenizer).
- `collect` (+ `worker`): parallel collection with scripted experts.
- `merge`: combine datasets collected as shards on several machines.
- `info`: a summary of a dataset for people and for scripts.
- `episodes`: iterate over or load episodes as numpy arrays (no torch).
- `torch_dataset`: a streaming torch `Dataset` (the only module that imports torch).
- `video`: episodes to mp4 for looking at them.

Nothing is imported here, so `import vla.data.store` never pulls in torch or PyBullet.
"""
