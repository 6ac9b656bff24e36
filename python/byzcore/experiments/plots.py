"""``curves.png``: loss and gradient norm against rounds and against bytes sent."""

from __future__ import annotations

__all__ = ["plot_curves"]


def plot_curves(runs: list, path: str, title: str | None = None) -> bool:
    """Loss and gradient norm against rounds and against bytes sent, one line per run.

    Parameters
    ----------
    runs
        ``(label, Result)`` pairs.
    path
        The PNG file to write.
    title
        A title over the four panels.

    Returns
    -------
    bool
        ``False`` (and nothing written) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
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
