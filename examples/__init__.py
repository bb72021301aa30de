"""Runnable examples (not part of the installed distribution): run them from the repository root."""
