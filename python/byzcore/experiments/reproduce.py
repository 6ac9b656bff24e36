"""Reproductions of published figures: preset grids shipped with byzcore
(``byzcore/experiments/presets/<name>.toml``), run by :func:`reproduce` (docs/reproductions.md).

Each preset is an ordinary grid file (:mod:`byzcore.experiments.grid`) with a ``[quick]``
table (the seconds-long variant the test suite runs) and a ``[figure]`` table (the figure).
"""

from __future__ import annotations

import os
from importlib import resources

from .grid import Grid, GridRun, expand, read_grid_file, run_grid
from .report import Report, write_report

__all__ = ["available_presets", "default_out", "load_preset", "preset_path", "reproduce"]


def default_out(name: str, quick: bool = False) -> str:
    """``runs/reproduce/<name>`` (``<name>-quick`` for the quick variant)."""
    return os.path.join("runs", "reproduce", name + ("-quick" if quick else ""))


def available_presets() -> dict:
    """Preset name -> its one-line description."""
    out = {}
    for entry in sorted(resources.files(__package__).joinpath("presets").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            name = entry.name[: -len(".toml")]
            out[name] = str(read_grid_file(preset_path(name)).get("description", ""))
    return out


def preset_path(name: str) -> str:
    """The file of preset ``name``.

    Raises
    ------
    ValueError
        ``[reproduce] unknown preset ...`` with the known names.
    """
    entry = resources.files(__package__).joinpath("presets").joinpath(f"{name}.toml")  # one name a call before 3.11
    if not entry.is_file():
        known = sorted(e.name[:-5] for e in resources.files(__package__).joinpath("presets").iterdir()
                       if e.name.endswith(".toml"))
        raise ValueError(f"[reproduce] unknown preset {name!r}; known: {', '.join(known)}")
    return str(entry)


def load_preset(name: str, *, quick: bool = False, seeds: int | None = None) -> Grid:
    """Preset ``name`` expanded (``quick``: its fast variant; ``seeds``: seeds ``0..seeds-1``).

    Raises
    ------
    ValueError
        ``[reproduce] ...`` for an unknown preset, ``[grid] ...`` for an option this build
        of byzcore does not have.
    """
    spec = read_grid_file(preset_path(name))
    spec.setdefault("name", name)
    return expand(spec, quick=quick, seeds=seeds)


def reproduce(name: str, out: str | None = None, *, quick: bool = False, seeds: int | None = None,
              jobs: int | None = None, progress: bool = True, plots: bool = True) -> tuple[GridRun, Report]:
    """Run preset ``name`` (resumably) and write its tables and figure.

    Parameters
    ----------
    name
        A preset of :func:`available_presets`.
    out
        The folder (default ``runs/reproduce/<name>`` or ``runs/reproduce/<name>-quick``).
    quick, seeds
        As :func:`load_preset`.
    jobs, progress
        As :func:`byzcore.experiments.grid.run_grid`.
    plots
        Write ``curves.png`` (the figure) and the heatmaps.

    Returns
    -------
    (GridRun, Report)
    """
    grid = load_preset(name, quick=quick, seeds=seeds)
    out = out or default_out(name, quick)
    done = run_grid(grid, out, jobs=jobs, progress=progress)
    return done, write_report(grid, out, failed=done.failed, plots=plots)
