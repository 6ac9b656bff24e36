"""Experiments on top of the algorithms: running a configuration on a backend
(:func:`run_experiment`), its files (:func:`save_result`) and plots (:func:`plot_curves`).

Later: grids of configurations and reproductions of published figures.
"""

from __future__ import annotations

from .plots import plot_curves
from .run import BACKENDS, default_out_dir, run_experiment, save_result, summary_lines

__all__ = ["BACKENDS", "default_out_dir", "plot_curves", "run_experiment", "save_result", "summary_lines"]
