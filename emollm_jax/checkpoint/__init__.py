"""Orbax checkpoints of training runs (``manager``) and loading a model from one (``restore``)."""
