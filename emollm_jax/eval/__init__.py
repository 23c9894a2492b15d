"""Scoring EmoBench: answer parsing, metrics, result files and the resumable predictions store.

Running models lives in ``emollm_jax.inference``; everything here works on text and rows,
imports no JAX (``tests/test_import_graph.py`` checks that none of these modules does), and
imports matplotlib only when a confusion-matrix PNG is drawn.
"""

from emollm_jax.eval.answers import parse_answer
from emollm_jax.eval.metrics import Metrics, TaskMetrics, compute_metrics
from emollm_jax.eval.predictions import PredictionStore
from emollm_jax.eval.result_files import markdown_table, read_results, write_results

__all__ = [
    "Metrics",
    "PredictionStore",
    "TaskMetrics",
    "compute_metrics",
    "markdown_table",
    "parse_answer",
    "read_results",
    "write_results",
]
