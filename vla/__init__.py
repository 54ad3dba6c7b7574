"""vla: the shared core (datasets, CLI, and later tokenizer, training, serving)."""

__version__ = "0.1.0"
