"""Closed-loop evaluation of policies in the simulator (`vla eval`)."""
