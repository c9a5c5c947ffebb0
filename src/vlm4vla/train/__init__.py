"""Training: a generic resumable loop (loop.py) and the VLA recipe on top (vla.py)."""
