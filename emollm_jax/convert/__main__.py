"""``python -m emollm_jax.convert hf-to-orbax SRC DST`` / ``orbax-to-hf SRC DST``."""

import sys

from emollm_jax.convert.cli import main

sys.exit(main())
