"""``benchmarks/accelerator_check.py`` on a machine without a GPU: it says so and exits 0; the
LM it would time is ~1B parameters."""

import importlib.util
import subprocess
import sys

import jax
from flax import nnx

from emollm_jax.config.model import from_config_dict
from emollm_jax.models.build import abstract_model
from tests.configs import REPO

SCRIPT = REPO / "benchmarks" / "accelerator_check.py"


def test_without_a_gpu_it_says_so_and_exits_0():
    r = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=REPO,
                       env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no NVIDIA GPU" in r.stdout


def test_the_timed_model_is_one_billion_scale():
    spec = importlib.util.spec_from_file_location("accelerator_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.one_b_config(8, 2048)
    params = sum(x.size for x in jax.tree.leaves(nnx.state(abstract_model(from_config_dict(config.model)))))
    assert 0.8e9 < params < 1.5e9
    assert config.model.attention == "cudnn" and config.model.dtype == "bfloat16"
