"""A pretrained causal language model as the trunk (OpenVLA style), via transformers.

`model.trunk` names a hub id or a local directory of a decoder-only LM (Llama, Qwen,
SmolLM, ...), loaded with `AutoModel.from_pretrained` (the base model, no LM head: our own
head maps hidden states to the action bins, so logits cover the action vocabulary only).
Linear maps adapt our token width to the LM's. The LM attends causally, so observation
tokens see only earlier ones; action tokens still see the whole observation.
"""

from __future__ import annotations

import torch
from torch import nn


class HFCausalTrunk(nn.Module):
    def __init__(self, name: str, d_model: int, config: dict | None = None,
                 pretrained: bool = True) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if pretrained:
            self.lm = AutoModel.from_pretrained(name)
        else:  # rebuilt from a checkpoint: the weights come from our safetensors
            self.lm = AutoModel.from_config(AutoConfig.for_model(**config))
        hidden = int(self.lm.config.hidden_size)
        self.inp = nn.Linear(d_model, hidden)
        self.out = nn.Linear(hidden, d_model)

    def lm_config(self) -> dict:
        return self.lm.config.to_dict()

    def new_cache(self) -> list[dict]:
        return [{}]

    def forward(self, x: torch.Tensor, mask: torch.Tensor, caches: list[dict] | None = None):
        # x (B, T, D); mask (B, 1, T_q, T_keys) from VLAModel: its last row lists the keys
        # the newest token may see, i.e. every non-padding key (the LM adds causality).
        key_mask = mask[:, 0, -1, :].long()  # (B, T_keys)
        if caches is None:
            out = self.lm(inputs_embeds=self.inp(x), attention_mask=key_mask, use_cache=False)
            return self.out(out.last_hidden_state)
        out = self.lm(inputs_embeds=self.inp(x), attention_mask=key_mask,
                      past_key_values=caches[0].get("past"), use_cache=True)
        caches[0]["past"] = out.past_key_values
        return self.out(out.last_hidden_state)
