"""Training and fine-tuning loops (`vla train`)."""
