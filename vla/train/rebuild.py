"""Fitting a checkpoint's model to the action contract of new data (`vla finetune`).

Same contract (a new task for the same robot): nothing changes; the tokenizer, the state
statistics and the contract stay the checkpoint's. Another contract (another robot, action
scale, dimensions or rate): the action tokenizer and the state statistics are fitted on the
new data and the contract becomes the data's; if the number of action dimensions differs,
the action positions are rebuilt and the action head re-initialised; if the number of
state dimensions differs, the state projection is rebuilt. The vision and language
encoders and the trunk keep their weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from bridges.contract import ActionContract
from policies.tokenizer import ActionTokenizer
from vla.train.data import dataset_contract, fit_action_tokenizer


@dataclass
class Refit:
    tokenizer: ActionTokenizer
    contract: ActionContract
    differences: list[str]  # "field: checkpoint has ..., data has ..."
    rebuilt: list[str]  # what was refitted or rebuilt, for people

    @property
    def new_contract(self) -> bool:
        return bool(self.differences)


def fit_to_data(model: nn.Module, tokenizer: ActionTokenizer, contract: ActionContract,
                data: list[str], tokenizer_mode: str, reshape_ok: bool = True) -> Refit:
    """Change `model` in place to speak the contract of `data` (see the module doc)."""
    theirs = dataset_contract(data)
    diffs = [d.replace("policy has", "checkpoint has").replace("robot has", "data has")
             for d in contract.differences(theirs)]
    if not diffs:
        return Refit(tokenizer, contract, [], [])
    cfg = model.cfg
    if sorted(theirs.cameras) != sorted(cfg.cameras):
        raise ValueError(f"the data's cameras {sorted(theirs.cameras)} are not the "
                         f"checkpoint's {cfg.cameras}; fine-tuning keeps the camera set "
                         f"(rename the dataset's cameras, or train from scratch)")
    n_actions, n_state = len(theirs.action_names), len(theirs.state_names)
    reshape = n_actions != cfg.action_dim or n_state != cfg.state_dim
    if reshape and not reshape_ok:
        raise ValueError(f"the data has {n_actions} action and {n_state} state dimensions, "
                         f"the checkpoint {cfg.action_dim} and {cfg.state_dim}; a LoRA adapter "
                         f"keeps the base's token layout: use --method full or "
                         f"frozen-encoders, which rebuild the action positions and state "
                         f"projection")
    new_tokenizer, stats = fit_action_tokenizer(data, cfg.n_bins, tokenizer_mode,
                                                theirs.action_names)
    new_contract = dataclasses.replace(theirs, chunk_length=cfg.chunk_length,
                                       normalization=stats)
    rebuilt = [f"action tokenizer: fitted on the new data ({cfg.n_bins} bins x {n_actions} "
               f"dimensions)", "state normalisation: fitted on the new data"]
    d = cfg.d_model
    if n_state != cfg.state_dim:
        model.state_proj = nn.Linear(n_state, d)
        rebuilt.append(f"state projection: {cfg.state_dim} -> {n_state} inputs (new weights)")
    if n_actions != cfg.action_dim:
        model.n_action_tokens = cfg.chunk_length * n_actions
        model.action_pos = nn.Parameter(torch.randn(1, model.n_action_tokens, d) * 0.02)
        model.head.reset_parameters()
        rebuilt.append(f"action positions: {cfg.chunk_length * cfg.action_dim} -> "
                       f"{model.n_action_tokens} tokens, and the action head (new weights)")
    else:  # the head scores bins for any dimension; the positions say which one it is
        rebuilt.append(f"action head: kept (same {n_actions} dimensions); it learns the new "
                       f"bins while fine-tuning")
    model.cfg = dataclasses.replace(cfg, action_dim=n_actions, state_dim=n_state)
    model.state_mean = torch.tensor(stats["state_mean"], dtype=torch.float32)
    model.state_std = torch.tensor(stats["state_std"], dtype=torch.float32)
    return Refit(new_tokenizer, new_contract, diffs, rebuilt)
