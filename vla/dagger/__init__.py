"""DAgger with the scripted experts: the policy drives, the expert labels every state it
visits, the labels join the data, and training continues (`vla dagger`)."""
