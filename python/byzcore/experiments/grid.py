"""Experiment grids: a TOML (or JSON) file whose list values expand into runs, run in parallel
worker processes, resumable, gathered into one table (docs/spec.md#grids).

A grid file::

    name = "robustness"
    algorithm = "resam"                      # any RunConfig field; a list expands
    aggregator = ["median", "nnm+median"]
    attack = ["alie", "sign-flip"]
    byzantine = [1, 3]
    split = ["homogeneous", "heterogeneous"]
    seed = [0, 1]

    [[cases]]                                # optional: a union of sub-grids over the above
    case = "momentum"                        # a column of the tables
    label = "{aggregator}, momentum"         # optional: its curves' legend
    beta = 0.9
    [[cases]]
    case = "no momentum"
    beta = 0.0

    [quick]                                  # overrides of `--quick` (reproductions)
    rounds = 20

    [figure]                                 # see byzcore.experiments.plots.plot_grid_curves
    x = "round"
    y = "loss"

Each run is identified by a hash of its resolved :class:`~byzcore.algorithms.RunConfig` (every
field, defaults included): a run whose ``runs/<hash>/summary.json`` exists is not run again,
and two grid points that resolve to the same configuration share one run.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .._environ import scoped_environ
from .._progress import Progress, Timer
from ..algorithms import RunConfig, algorithm_name
from ..algorithms import run as run_config

__all__ = ["GRID_KEYS", "Grid", "GridPoint", "GridRun", "config_hash", "default_jobs", "expand", "load_grid",
           "run_grid"]

# The keys of a grid file that are not RunConfig fields.
GRID_KEYS = ("name", "description", "metric", "cases", "quick", "figure")
_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


@dataclass
class GridPoint:
    """One point of an expanded grid: a case, its resolved configuration and its run id.

    Attributes
    ----------
    case : str
        The ``case`` of its ``[[cases]]`` entry (``""`` outside ``[[cases]]``).
    config : RunConfig
        The resolved configuration (every field, defaults included).
    run_id : str
        Its :func:`config_hash`, the name of its folder ``runs/<run_id>``.
    label : str
        The case's ``label``: a format string over the configuration fields (and ``case``)
        naming its curves; ``""`` (default) leaves the naming to the figure.

    References
    ----------
    docs/spec.md#grids.
    """

    case: str
    config: RunConfig
    run_id: str
    label: str = ""

    def row(self) -> dict:
        """``case``, ``run`` and every configuration field."""
        return {"case": self.case, "run": self.run_id, **dataclasses.asdict(self.config)}


@dataclass
class Grid:
    """A loaded grid file: its points and what its tables and figure need.

    Attributes
    ----------
    name : str
        From the file (default: the file's stem, or ``"grid"`` for :func:`expand`).
    description : str
        From the file (default ``""``).
    points : list of GridPoint
        The expanded points, in file order.
    varied : list of str
        The configuration fields that take more than one value over ``points`` (the table's
        and figures' axes), in the file's key order, plus ``case`` first when the file has
        ``[[cases]]``.
    metric : str
        The final metric the heatmaps and the worst-case table report (default ``loss``).
    figure : dict
        The ``[figure]`` table (see :func:`byzcore.experiments.report.curve_panels` and
        :func:`byzcore.experiments.plots.plot_grid_curves`).

    References
    ----------
    docs/spec.md#grids.
    """

    name: str
    description: str
    points: list
    varied: list
    metric: str = "loss"
    figure: dict = field(default_factory=dict)


@dataclass
class GridRun:
    """What :func:`run_grid` did.

    Attributes
    ----------
    grid : Grid
        The grid that ran.
    out : str
        Its folder.
    ran : list of str
        Run ids run now and finished, in order of completion.
    skipped : list of str
        Run ids already finished (their ``summary.json`` exists), not run again.
    failed : dict of str to str
        Run id -> ``"ExceptionType: message"`` of the runs that raised; they are retried
        on the next call.
    seconds : float
        Wall-clock time of the call.
    """

    grid: Grid
    out: str
    ran: list
    skipped: list
    failed: dict
    seconds: float


def _grid_error(msg: str) -> ValueError:
    return ValueError(f"[grid] {msg}")


def load_grid(path: str, *, quick: bool = False, seeds: int | None = None) -> Grid:
    """Read a grid file (``.toml``, or ``.json``) and expand it.

    Parameters
    ----------
    path : str
        The file. TOML needs Python 3.11+ (``tomllib``) or the ``tomli`` package.
    quick : bool, optional
        Merge the file's ``[quick]`` table over every point (a fast variant).
    seeds : int or None, optional
        Replace the file's seeds by ``0..seeds-1``.

    Returns
    -------
    Grid
        Its points; ``name`` defaults to the file's stem.

    Raises
    ------
    ValueError
        ``[grid] ...`` for an unreadable file, an unknown key, a bad value or an empty grid.

    See Also
    --------
    expand, read_grid_file

    References
    ----------
    docs/spec.md#grids.
    """
    spec = read_grid_file(path)
    spec.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    return expand(spec, quick=quick, seeds=seeds)


def read_grid_file(path: str) -> dict:
    """The grid file ``path`` as a dict (TOML or JSON by extension), not expanded.

    Parameters
    ----------
    path : str
        The file: JSON when it ends in ``.json``, TOML otherwise.

    Returns
    -------
    dict
        The file's top-level table.

    Raises
    ------
    ValueError
        ``[grid] ...`` when the file is missing or unparsable, when its top level is not a
        table, or when TOML cannot be read here (Python < 3.11 without ``tomli``).
    """
    if not os.path.isfile(path):
        raise _grid_error(f"no grid file {path!r}")
    if path.endswith(".json"):
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise _grid_error(f"cannot read {path}: {exc}") from None
    else:
        toml = _toml_module()
        try:
            with open(path, "rb") as fh:
                data = toml.load(fh)
        except toml.TOMLDecodeError as exc:
            raise _grid_error(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise _grid_error(f"{path} must hold a table of keys, got {type(data).__name__}")
    return data


def _toml_module() -> Any:
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib  # the same parser, for Python 3.9 and 3.10
        except ImportError:
            raise _grid_error("reading TOML needs Python 3.11+ or `pip install tomli`; or write the grid as "
                              ".json") from None
    return tomllib


def _value(key: str, v: Any) -> Any:
    """A grid value made a RunConfig value: ``"inf"`` for a float field, ``"none"`` for an
    optional field (TOML has no null)."""
    f = _FIELDS[key]
    if isinstance(v, str):
        if v.lower() in ("none", "null") and "None" in str(f.type):
            return None
        if v.lower() in ("inf", "+inf", "infinity") and "float" in str(f.type):
            return math.inf
    if isinstance(v, (dict, list)):
        raise _grid_error(f"{key}: nested lists and tables are not values, got {v!r}")
    return v


def expand(spec: dict, *, quick: bool = False, seeds: int | None = None) -> Grid:
    """The points of a grid given as a dict (what a grid file holds).

    Top-level configuration fields apply to every point; each ``[[cases]]`` entry is merged
    over them (a union of sub-grids; without ``cases`` there is one); ``[quick]`` is merged
    last when ``quick``; then every list value expands (Cartesian product, in key order). Points
    that resolve to the same configuration within a case are kept once.

    Parameters
    ----------
    spec : dict
        The grid (see the module docstring and docs/spec.md#grids).
    quick : bool, optional
        Merge ``spec["quick"]`` over every point.
    seeds : int or None, optional
        Replace the seeds by ``seed = [0, ..., seeds-1]`` (merged last).

    Returns
    -------
    Grid
        The points, in expansion order; ``name`` defaults to ``"grid"``.

    Raises
    ------
    ValueError
        ``[grid] ...`` for an unknown key, ``cases`` that is not an array of tables, a
        ``seeds`` that is not a positive integer, an empty or nested list, a value RunConfig
        refuses, an unknown algorithm, or a grid with no points.
    """
    top = {k: v for k, v in spec.items() if k not in GRID_KEYS}
    cases = spec.get("cases") or [{}]
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise _grid_error("cases must be an array of tables ([[cases]])")
    extra = dict(spec.get("quick") or {}) if quick else {}
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise _grid_error(f"seeds must be a positive integer, got {seeds!r}")
        extra["seed"] = list(range(seeds))
    points: list = []
    order: list = []  # the file's key order: the tables' and figures' column order
    for case in cases:
        merged = {**top, **{k: v for k, v in case.items() if k not in ("case", "label")}, **extra}
        order.extend(k for k in merged if k not in order)
        unknown = sorted(set(merged) - set(_FIELDS))
        if unknown:
            raise _grid_error(f"unknown keys {unknown}; a grid holds RunConfig fields ({', '.join(_FIELDS)}) and "
                              f"{', '.join(GRID_KEYS)}")
        seen = set()
        for values in _product(merged):
            try:
                cfg = RunConfig.from_dict(values)
                cfg.algorithm = algorithm_name(cfg.algorithm)
            except (ValueError, TypeError) as exc:
                raise _grid_error(f"bad point {values}: {exc}") from None
            h = config_hash(cfg)
            if h not in seen:
                seen.add(h)
                points.append(GridPoint(str(case.get("case", "")), cfg, h, str(case.get("label", ""))))
    if not points:
        raise _grid_error("the grid has no points (an empty list?)")
    varied = [k for k in order if len({json.dumps(p.config.to_dict()[k]) for p in points}) > 1]
    if any(p.case for p in points):
        varied.insert(0, "case")
    metric = str(spec.get("metric", "loss"))
    return Grid(name=str(spec.get("name", "grid")), description=str(spec.get("description", "")), points=points,
                varied=varied, metric=metric, figure=dict(spec.get("figure") or {}))


def _product(merged: dict) -> Iterator[dict]:
    keys = list(merged)
    axes = []
    for k in keys:
        v = merged[k]
        vals = v if isinstance(v, list) else [v]
        if not vals:
            raise _grid_error(f"{k}: an empty list gives an empty grid")
        axes.append([_value(k, x) for x in vals])
    for combo in itertools.product(*axes):
        yield dict(zip(keys, combo))


def config_hash(cfg: RunConfig) -> str:
    """The run id of a configuration (docs/spec.md#grids).

    Parameters
    ----------
    cfg : RunConfig
        The resolved configuration.

    Returns
    -------
    str
        The first 16 hex digits of the SHA-256 of its fields (every field, defaults
        included) as sorted strict JSON, ``inf`` written as ``null`` (as in ``summary.json``).
    """
    text = json.dumps(cfg.to_dict(), sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_jobs() -> int:
    """The number of worker processes :func:`run_grid` uses by default.

    Returns
    -------
    int
        The CPUs this process may use (its affinity on Linux, ``os.cpu_count()`` elsewhere),
        between 1 and 8.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def run_dir(out: str, run_id: str) -> str:
    """Where a run's ``metrics.jsonl`` and ``summary.json`` live.

    Parameters
    ----------
    out : str
        The grid's folder.
    run_id : str
        The run's :func:`config_hash`.

    Returns
    -------
    str
        ``out/runs/<run_id>``.
    """
    return os.path.join(out, "runs", run_id)


def is_finished(out: str, run_id: str) -> bool:
    """Whether a run is finished: its ``summary.json`` exists.

    The run's folder is moved into place by a rename once complete, so an interrupted run
    never looks finished.

    Parameters
    ----------
    out : str
        The grid's folder.
    run_id : str
        The run's :func:`config_hash`.

    Returns
    -------
    bool
    """
    return os.path.isfile(os.path.join(run_dir(out, run_id), "summary.json"))


def _run_one(config: dict, out: str, run_id: str) -> tuple[str, str | None]:
    """Run one configuration and move its files into place; ``(run_id, error or None)``.
    Runs in a worker process: errors come back as text, so one bad point cannot stop a grid."""
    try:
        res = run_config(RunConfig.from_dict(config))
    except Exception as exc:  # reported in the table and by the command; the grid goes on
        return run_id, f"{type(exc).__name__}: {exc}"
    final = run_dir(out, run_id)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{run_id}.", dir=os.path.dirname(final))
    res.save(tmp)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(final)  # an unfinished earlier attempt
    os.replace(tmp, final)
    return run_id, None


# Worker processes inherit these while they start, so `jobs` processes use `jobs` cores
# rather than each spreading BLAS and torch threads over all of them.
_ONE_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")


def run_grid(grid: Grid, out: str, *, jobs: int | None = None, progress: bool = True) -> GridRun:
    """Run every unfinished point of ``grid`` into ``out/runs/<run id>/``.

    Points that share a run id run once; a finished run is skipped (resuming). A run that
    raises does not stop the others: it is reported in :attr:`GridRun.failed` and retried on
    the next call. Worker processes are started by ``spawn`` with one BLAS/OpenMP thread each
    (docs/spec.md#grids).

    Parameters
    ----------
    grid : Grid
        From :func:`load_grid` or :func:`expand`.
    out : str
        The grid's folder.
    jobs : int or None, optional
        Worker processes (default :func:`default_jobs`); with ``1``, or at most one run to
        do, the runs go in this process.
    progress : bool, optional
        One progress bar over the runs (default True).

    Returns
    -------
    GridRun
        What ran, what was skipped, what failed.

    Raises
    ------
    ValueError
        ``[grid] jobs must be an integer >= 1`` for any other ``jobs``.
    """
    jobs = default_jobs() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise _grid_error(f"jobs must be an integer >= 1, got {jobs!r}")
    clock = Timer(started=True)
    todo: dict = {}
    skipped = []
    for p in grid.points:
        if p.run_id in todo or p.run_id in skipped:
            continue
        if is_finished(out, p.run_id):
            skipped.append(p.run_id)
        else:
            todo[p.run_id] = dataclasses.asdict(p.config)  # inf stays inf (to_dict writes null)
    ran, failed = [], {}
    with Progress(len(todo), f"grid {grid.name}", unit="run", enabled=progress and bool(todo)) as bar:
        def done(run_id: str, error: str | None) -> None:
            if error is None:
                ran.append(run_id)
            else:
                failed[run_id] = error
                bar.write(f"run {run_id} failed: {error}")
            bar.show(failed=len(failed))
            bar.update()

        if jobs == 1 or len(todo) <= 1:
            for run_id, cfg in todo.items():
                done(*_run_one(cfg, out, run_id))
        else:
            ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
            with scoped_environ(_ONE_THREAD), \
                    cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx) as pool:
                futures = [pool.submit(_run_one, cfg, out, run_id) for run_id, cfg in todo.items()]
                for fut in cf.as_completed(futures):
                    done(*fut.result())
    return GridRun(grid=grid, out=out, ran=ran, skipped=skipped, failed=failed, seconds=clock.elapsed)
