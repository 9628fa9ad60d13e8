"""The mask being edited: its label buffer (in memory or chunked), edit operations, undo history,
saving of chunked masks and recovery copies.

Builds on core.io."""
