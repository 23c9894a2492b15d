"""Training: ``python -m emollm_jax.train --config configs/X.py --workdir DIR``."""
