"""Reproductions of published figures: preset grids shipped with byzcore
(``byzcore/experiments/presets/<name>.toml``), run by :func:`reproduce` (docs/reproductions.md).

Each preset is an ordinary grid file (:mod:`byzcore.experiments.grid`, docs/spec.md#grids)
with a ``[quick]`` table (the seconds-long variant the test suite runs) and a ``[figure]``
table (the figure); the settings the presets use are in docs/spec.md#presets.
"""

from __future__ import annotations

import os
from importlib import resources

from .grid import Grid, GridRun, expand, read_grid_file, run_grid
from .report import Report, write_report

__all__ = ["available_presets", "default_out", "load_preset", "preset_path", "reproduce"]


def default_out(name: str, quick: bool = False) -> str:
    """The folder :func:`reproduce` writes into by default.

    Parameters
    ----------
    name : str
        The preset.
    quick : bool, optional
        The quick variant.

    Returns
    -------
    str
        ``runs/reproduce/<name>`` (``runs/reproduce/<name>-quick`` for the quick variant),
        relative to the working directory.
    """
    return os.path.join("runs", "reproduce", name + ("-quick" if quick else ""))


def available_presets() -> dict:
    """The presets shipped with this build of byzcore.

    Returns
    -------
    dict of str to str
        Preset name -> its ``description`` (``""`` when the file has none), sorted by name.

    References
    ----------
    docs/spec.md#presets.
    """
    out = {}
    for entry in sorted(resources.files(__package__).joinpath("presets").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            name = entry.name[: -len(".toml")]
            out[name] = str(read_grid_file(preset_path(name)).get("description", ""))
    return out


def preset_path(name: str) -> str:
    """The file of preset ``name``.

    Parameters
    ----------
    name : str
        The preset (a key of :func:`available_presets`).

    Returns
    -------
    str
        The path of ``presets/<name>.toml`` inside the installed package.

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
    """Preset ``name``, read and expanded as a grid.

    Parameters
    ----------
    name : str
        The preset (a key of :func:`available_presets`).
    quick : bool, optional
        Its fast variant (the preset's ``[quick]`` table merged over every point).
    seeds : int or None, optional
        Replace the preset's seeds by ``0..seeds-1``.

    Returns
    -------
    Grid
        The expanded grid, named ``name`` unless the file names it.

    Raises
    ------
    ValueError
        ``[reproduce] ...`` for an unknown preset, ``[grid] ...`` for an option this build
        of byzcore does not have.

    References
    ----------
    docs/spec.md#presets, docs/spec.md#grids.
    """
    spec = read_grid_file(preset_path(name))
    spec.setdefault("name", name)
    return expand(spec, quick=quick, seeds=seeds)


def reproduce(name: str, out: str | None = None, *, quick: bool = False, seeds: int | None = None,
              jobs: int | None = None, progress: bool = True, plots: bool = True) -> tuple[GridRun, Report]:
    """Run preset ``name`` (resumably) and write its tables and figure.

    Parameters
    ----------
    name : str
        A preset of :func:`available_presets`.
    out : str or None, optional
        The folder (default :func:`default_out`: ``runs/reproduce/<name>`` or
        ``runs/reproduce/<name>-quick``).
    quick : bool, optional
        As :func:`load_preset`.
    seeds : int or None, optional
        As :func:`load_preset`.
    jobs : int or None, optional
        As :func:`byzcore.experiments.grid.run_grid`.
    progress : bool, optional
        As :func:`byzcore.experiments.grid.run_grid`.
    plots : bool, optional
        Write ``curves.png`` (the figure) and the heatmaps (default True).

    Returns
    -------
    tuple of (GridRun, Report)
        What ran, and the tables and figures written from every finished run in ``out``.

    Raises
    ------
    ValueError
        As :func:`load_preset` and :func:`~byzcore.experiments.grid.run_grid`.

    References
    ----------
    docs/spec.md#presets, docs/spec.md#grids.
    """
    grid = load_preset(name, quick=quick, seeds=seeds)
    out = out or default_out(name, quick)
    done = run_grid(grid, out, jobs=jobs, progress=progress)
    return done, write_report(grid, out, failed=done.failed, plots=plots)
