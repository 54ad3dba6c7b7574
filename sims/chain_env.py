"""`ChainStepEnv`: one step of a chain, from where the steps before it left things.

Every other env of the suite starts with the hand above the board and nothing moved. A
chain's later steps start elsewhere: a block in the hand, a block already in a zone, the
hand at the board's edge after a push (sims/chains.py). This env's episode `seed` is
step `seed % 5 + 1` of chain `seed // 5`: `reset` draws the chain's scene, lets the
scripted expert carry out the steps before (without rendering them), and hands over
with the step's goal, words and task. Collection (`vla collect --task chain_step`),
DAgger rollouts (`tasks: [sims/ChainStep-v0]`) and `vla eval` then see the states
chains reach, through the machinery they already use.

An episode ends when its step succeeds (the step's own task's test) or after that
task's step budget.
"""

from __future__ import annotations

from sims.chains import CHAIN_LENGTH, SCENE_TASK, run_chain, sample_chain
from sims.env import TabletopEnv
from sims.tasks import TASKS

TASK_NAME = "chain_step"


class _Scene:
    """What `sample_chain` needs of an env, with the plain tabletop reset (no recursion)."""

    def __init__(self, env: TabletopEnv, options: dict | None) -> None:
        self.unwrapped, self._options = env, options

    def reset(self, seed: int):
        return TabletopEnv.reset(self.unwrapped, seed=seed, options=self._options)


class ChainStepEnv(TabletopEnv):
    def __init__(self, task: str = TASK_NAME, **kwargs) -> None:
        if task != TASK_NAME:
            raise ValueError(f"task={task!r}; ChainStepEnv is the task {TASK_NAME!r}")
        super().__init__(task=SCENE_TASK, **kwargs)
        self.chain_seed = self.position = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        from sims.experts import make_expert

        if seed is None:  # as the other envs: drawn from the env's own generator
            seed = int(self.np_random.integers(2**31))
        self.chain_seed, self.position = divmod(int(seed), CHAIN_LENGTH)
        steps = sample_chain(_Scene(self, options), self.chain_seed)
        expert = make_expert(self)
        self._blind = True  # the steps before are not looked at: no frames rendered
        try:
            run_chain(self, steps[: self.position], lambda obs: [expert.act()])
        finally:
            self._blind = False
        step = steps[self.position]
        obs = self.set_goal(step.task, step.goal)
        self.steps, self.episode_seed = 0, int(seed)
        return obs, self._info(False)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        budget = TASKS[self.goal_task].max_steps  # the step's own task's budget
        truncated = truncated or (not terminated and self.steps >= budget)
        return obs, reward, terminated, truncated, info

    def episode_metadata(self) -> dict:
        meta = super().episode_metadata()
        return {**meta, "task": self.goal_task, "seed": self.episode_seed,
                "chain_seed": self.chain_seed, "chain_position": self.position + 1}
