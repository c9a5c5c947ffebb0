"""VLA policy = VLM backbone + ActionQuery + MLP action head (see policy.py)."""
