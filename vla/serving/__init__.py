"""The policy server: many robots, one policy, over ZeroMQ (protocol: `bridges.protocol`).

- `server.PolicyServer`: the ROUTER loop (sessions, dynamic batching, error replies).
- `policies.load_policy`: the policy a spec names (`builtin:hold`, `builtin:random`, ...).
- `client.PolicyClient`: a small blocking client for tests, benchmarks and scripts.
- `curve`: CurveZMQ key files and socket setup.

Nothing here imports torch at module level; a checkpoint loader does so when asked.
"""
