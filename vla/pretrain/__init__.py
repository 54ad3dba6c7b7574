"""`vla pretrain`: the grounding stage (captioned synthetic scenes, no robot actions)."""
