"""The figures: a run's ``curves.png`` (loss and gradient norm against rounds and against bytes
sent), a grid's curves per cell (mean and standard error over seeds) and its heatmaps."""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["NO_MATPLOTLIB", "have_matplotlib", "note_no_matplotlib", "plot_curves", "plot_grid_curves",
           "plot_heatmaps"]

#: Why no figure was written when one was asked for without matplotlib (printed to stderr by
#: :func:`note_no_matplotlib`, kept in :attr:`byzcore.experiments.report.Report.notes`).
NO_MATPLOTLIB = 'matplotlib is not installed: no figures written; pip install "byzcore[plot]"'


def have_matplotlib() -> bool:
    """Whether the ``plot_*`` functions can draw.

    Returns
    -------
    bool
        ``True`` when matplotlib imports (its Agg backend is then selected).
    """
    return _pyplot() is not None


def note_no_matplotlib() -> str:
    """Say on stderr that no figure is written: one line, the prefix ``byzcore:`` then :data:`NO_MATPLOTLIB`.

    Returns
    -------
    str
        :data:`NO_MATPLOTLIB`, for a report's notes.
    """
    print(f"byzcore: {NO_MATPLOTLIB}", file=sys.stderr)
    return NO_MATPLOTLIB


def plot_curves(runs: list, path: str, title: str | None = None) -> bool:
    """Loss and gradient norm against rounds and against bytes sent, one line per run.

    Parameters
    ----------
    runs : list of tuple
        ``(label, Result)`` pairs.
    path : str
        The PNG file to write.
    title : str or None, optional
        A title over the four panels.

    Returns
    -------
    bool
        ``False`` (and nothing written) when matplotlib is not installed.
    """
    plt = _pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for label, res in runs:
        r, b = res.column("round"), res.column("bytes_sent")
        for row, key in enumerate(("loss", "grad_norm")):
            y = res.column(key)
            axes[row, 0].plot(r, y, label=label)
            axes[row, 1].plot(b / 2**20, y, label=label)
    for row, key in enumerate(("loss", "gradient norm")):
        axes[row, 0].set_ylabel(key)
        for col in range(2):
            axes[row, col].set_yscale("log")
            axes[row, col].grid(True, alpha=0.3)
    axes[1, 0].set_xlabel("round")
    axes[1, 1].set_xlabel("MiB sent by clients")
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _grid_of_axes(plt, n: int, ncols: int, size: tuple, sharey: bool = False) -> tuple:
    """A figure of ``n`` panels, ``ncols`` a row, each ``size`` inches; the unused ones hidden."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, sharey=sharey)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, axes


def _mean_curve(seeds: list, x: str, y: str) -> tuple:
    """``(x, mean, standard error)`` over seeds at each recorded index; a seed that stopped
    early (diverged) counts where it has values. ``x`` falls back to ``round``."""
    longest = max(seeds, key=len)
    key = x if any(x in row for row in longest) else "round"
    xs = np.array([np.nan if r.get(key) is None else r[key] for r in longest], dtype=np.float64)
    ys = np.full((len(seeds), len(longest)), np.nan)
    for i, rows in enumerate(seeds):
        ys[i, :len(rows)] = [np.nan if r.get(y) is None else r[y] for r in rows]
    ok = ~np.isnan(ys)
    count = ok.sum(axis=0)
    mean = np.where(count > 0, np.where(ok, ys, 0).sum(axis=0) / np.maximum(count, 1), np.nan)
    dev = np.where(ok, ys - mean, 0)
    se = np.where(count > 1, np.sqrt((dev**2).sum(axis=0) / np.maximum(count - 1, 1)) / np.sqrt(np.maximum(count, 1)),
                  0.0)
    return xs, mean, se, key


def plot_grid_curves(panels: list, path: str, *, x: str = "round", y: str = "loss", logy: bool = True,
                     title: str | None = None, ncols: int = 3, sharey: bool = False,
                     ylim: tuple | None = None) -> bool:
    """One panel per grid cell, one line per setting: the mean over seeds of metric ``y``
    against ``x``, with a band of one standard error.

    Parameters
    ----------
    panels : list of tuple
        ``(panel title, lines[, x])``; ``lines`` are ``(label, seeds)`` pairs and ``seeds``
        the recorded rows (``metrics.jsonl``) of each seed's run; ``x`` (optional) overrides
        the x axis of that panel (:func:`~byzcore.experiments.report.curve_panels` makes them).
    path : str
        The PNG file to write.
    x, y : str, optional
        Metric names (default ``round`` and ``loss``; ``x`` falls back to ``round`` where a
        run did not record it).
    logy : bool, optional
        A logarithmic y axis (default True).
    title : str or None, optional
        A title over the panels.
    ncols : int, optional
        Panels per row (default 3).
    sharey : bool, optional
        One y range for all panels.
    ylim : tuple of float or None, optional
        ``(low, high)`` of every panel's y axis (a diverging line then leaves the top).

    Returns
    -------
    bool
        ``False`` (and nothing written) when matplotlib is not installed or nothing to draw.
    """
    plt = _pyplot()
    if plt is None or not panels:
        return False
    fig, axes = _grid_of_axes(plt, len(panels), ncols, (4.6, 3.5), sharey=sharey)
    for ax, (ptitle, lines, *px) in zip(axes.flat, panels):
        xkey = (px[0] if px else None) or x
        for label, seeds in lines:
            xs, mean, se, xkey = _mean_curve(seeds, xkey, y)
            (line,) = ax.plot(xs, mean, label=label, lw=1.4)
            if np.any(se > 0):
                lo = mean - se if not logy else np.maximum(mean - se, mean * 0.5)
                ax.fill_between(xs, lo, mean + se, color=line.get_color(), alpha=0.2, lw=0)
        if logy:
            ax.set_yscale("log")
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_title(ptitle, fontsize=9)
        ax.set_xlabel(xkey)
        ax.set_ylabel(y)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10 if min(ncols, len(panels)) > 2 else 8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_heatmaps(panels: list, path: str, *, metric: str, row_label: str, col_label: str,
                  title: str | None = None) -> bool:
    """Heatmaps of a final metric, one per rule (or other setting): ``row_label`` down,
    ``col_label`` across, each cell annotated; ``inf`` cells (a run diverged) read ``div``.

    Parameters
    ----------
    panels : list of tuple
        ``(panel title, row values, column values, matrix)``; ``matrix`` is
        ``(rows, columns)`` with ``nan`` where the grid has no run, ``inf`` where one diverged.
    path : str
        The PNG file to write.
    metric : str
        What the cells are. Better values are drawn bright (the largest for ``accuracy``,
        the smallest otherwise); the colour scale is logarithmic for another metric whose
        positive values span more than a factor 10.
    row_label, col_label : str
        The axis labels of the rows and columns.
    title : str or None, optional
        A title over the heatmaps (default ``"worst-case <metric> over attacks"``).

    Returns
    -------
    bool
        ``False`` (and nothing written) when matplotlib is not installed or nothing to draw.
    """
    plt = _pyplot()
    if plt is None or not panels:
        return False
    fig, axes = _grid_of_axes(plt, len(panels), 3, (4.2, 3.4))
    from matplotlib.colors import LogNorm, Normalize

    finite = np.concatenate([m[np.isfinite(m)] for *_, m in panels] or [np.zeros(0)])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    # Losses span orders of magnitude once a rule breaks: a logarithmic colour scale then.
    log = metric != "accuracy" and vmin > 0 and vmax > 10 * vmin
    scale = np.log if log else (lambda v: v)
    for ax, (ptitle, rows, cols, m) in zip(axes.flat, panels):
        shown = np.where(np.isinf(m), vmax, m)
        norm = LogNorm(vmin=vmin, vmax=vmax) if log else Normalize(vmin=vmin, vmax=vmax)
        im = ax.imshow(shown, cmap="viridis_r" if metric != "accuracy" else "viridis", norm=norm, aspect="auto")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                v = m[i, j]
                text = "" if np.isnan(v) else ("div" if np.isinf(v) else f"{v:.3g}")
                level = 0.5 if not np.isfinite(v) or vmax == vmin else \
                    (scale(v) - scale(vmin)) / (scale(vmax) - scale(vmin))
                bright = level > 0.5 if metric == "accuracy" else level < 0.5  # viridis is bright at its top
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="k" if bright else "w")
        ax.set_xticks(range(len(cols)), [str(c) for c in cols], fontsize=7, rotation=20)
        ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
        ax.set_xlabel(col_label)
        ax.set_ylabel(row_label)
        ax.set_title(ptitle, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title or f"worst-case {metric} over attacks")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
