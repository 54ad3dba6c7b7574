"""Turn what a user types (`sims/Pick-v0`, `Pick-v0`, `pick`) into a registered env id.

Lookups that fail list the valid names and suggest the closest one (difflib), so a typo
costs one glance instead of a trip to the docs.
"""

from __future__ import annotations

import difflib


def resolve_env_id(name: str) -> str:
    """The registered gymnasium id for an env id, an id without `sims/`, or a task name.

    A bare task name (`pick`, `push_to`) means the Panda version of that task.
    """
    import sims  # registers the ids; imported here so `vla --help` stays fast

    by_key: dict[str, str] = {}
    for env_id in [*sims.ENV_IDS, *sims.EXTRA_ENV_IDS]:
        task, robot = sims.env_task(env_id)
        by_key[env_id.lower()] = env_id
        by_key[env_id.split("/", 1)[1].lower()] = env_id
        if robot == "panda":
            by_key[task] = env_id
            by_key[task.replace("_", "-")] = env_id
    found = by_key.get(name.strip().lower())
    if found is not None:
        return found
    tasks = sorted({sims.env_task(i)[0] for i in sims.ENV_IDS})
    close = difflib.get_close_matches(name.lower(), list(by_key), n=1, cutoff=0.5)
    hint = f"; did you mean {by_key[close[0]]!r}?" if close else ""
    raise ValueError(
        f"task {name!r} is unknown; expected an env id ({', '.join(sims.ENV_IDS)}) "
        f"or a task name ({', '.join(tasks)}){hint}"
    )
