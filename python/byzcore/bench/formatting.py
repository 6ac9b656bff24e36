"""The printed table: columns, one line per cell, the header describing the machine."""

from __future__ import annotations

__all__ = ["COLUMNS", "fmt_time", "format_row", "header_lines", "table_line"]


def fmt_time(t: float | None) -> str:
    """A duration in the largest unit it is at least 1 of (s, ms, us, else ns), 3 significant digits.

    Parameters
    ----------
    t : float or None
        Seconds.

    Returns
    -------
    str
        E.g. ``"1.23ms"``; ``"-"`` for None.
    """
    if t is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g}{unit}"
    return f"{t / 1e-9:.3g}ns"


def fmt_x(x: float | None) -> str:
    """A speed ratio as ``"1.23x"`` (3 significant digits; no decimals from 100 on).

    Parameters
    ----------
    x : float or None
        The ratio.

    Returns
    -------
    str
        E.g. ``"1.23x"`` or ``"250x"``; ``"-"`` for None.
    """
    return "-" if x is None else (f"{x:.3g}x" if x < 100 else f"{x:.0f}x")


COLUMNS = ("op", "n", "d", "time", "GB/s", "%BW", "numpy", "x-np", "torch", "x-torch", "note")
_WIDTHS = (18, 5, 9, 8, 7, 5, 8, 7, 8, 7, 0)


def table_line(values: tuple) -> str:
    """One line of the results table: ``values`` padded to the columns' widths.

    The first column is left-aligned, the others right-aligned, the last (the note) unpadded.

    Parameters
    ----------
    values : tuple
        One value per column of ``COLUMNS``.

    Returns
    -------
    str
        The line, without trailing spaces.
    """
    cells = (str(v).rjust(w) if i and w else str(v).ljust(w) for i, (v, w) in enumerate(zip(values, _WIDTHS)))
    return " ".join(cells).rstrip()


def format_row(r: dict) -> str:
    """One benchmark result as a table line (a skipped or failed one with its reason).

    Parameters
    ----------
    r : dict
        A result row of :func:`byzcore.bench.grid.run` (``op``, ``n``, ``d``, ``status``, and for
        an ``"ok"`` one ``time_s``, ``gbps`` and the optional ``bw_fraction``, ``numpy_s``,
        ``speedup_numpy``, ``torch_s``, ``speedup_torch``, ``note``).

    Returns
    -------
    str
        The line; for a status other than ``"ok"``, dashes and ``"STATUS: note"``.
    """
    if r["status"] != "ok":
        note = f"{r['status'].upper()}: {r.get('note', '')}"
        return table_line((r["op"], r["n"], r["d"], "-", "-", "-", "-", "-", "-", "-", note))
    bw = r.get("bw_fraction")
    return table_line((r["op"], r["n"], r["d"], fmt_time(r["time_s"]), f"{r['gbps']:.3g}",
                  "-" if bw is None else f"{100 * bw:.0f}%",
                  fmt_time(r.get("numpy_s")), fmt_x(r.get("speedup_numpy")),
                  fmt_time(r.get("torch_s")), fmt_x(r.get("speedup_torch")), r.get("note", "")))


def header_lines(env: dict, bw: dict) -> list[str]:
    """The lines above the table: library, build, machine, BLAS, load and measured bandwidth.

    Notes are added where ``OPENBLAS_CORETYPE`` or ``OPENBLAS_L2_SIZE`` is set or the load
    average exceeds half the cores (multi-threaded timings are then pessimistic).

    Parameters
    ----------
    env : dict
        :func:`~byzcore.bench.environment.environment`'s result.
    bw : dict
        :func:`~byzcore.bench.environment.measure_read_bandwidth`'s result, or empty when it
        was not measured.

    Returns
    -------
    list of str
        The lines.
    """
    bz = env["byzcore"]
    first = (f"byzcore {bz['version']} ({bz['simd']}, {bz['threads']} threads, cuda={bz['cuda']}) | "
             f"{env['cpu']}, {env['cores']} cores | numpy {env['numpy']} | torch {env['torch'] or 'not installed'}")
    lines = [first]
    if env.get("blas"):
        lines.append("numpy BLAS: " + ", ".join(f"{b['internal_api']} {b['version']} {b['architecture']} "
                                                f"({b['num_threads']} threads)" for b in env["blas"]))
    if env["openblas_env"]:
        lines.append("note: " + " ".join(f"{k}={v}" for k, v in env["openblas_env"].items()) +
                     " is set: it can slow NumPy's BLAS; see `byzcore bench --help`")
    load = env.get("load_average")
    if load and load[0] > 0.5 * (env["cores"] or 1):
        lines.append(f"note: load average {load[0]:.1f} on {env['cores']} cores: other processes compete for the "
                     "cores, so multi-threaded timings are pessimistic")
    if "numpy_sum_1thread_gbps" in bw:
        lines.append(f"read bandwidth: {bw['best_gbps']:.1f} GB/s (NumPy sum of {bw['bytes'] / 2**30:.2g} GiB: "
                     f"{bw['numpy_sum_1thread_gbps']:.1f} GB/s on 1 thread, "
                     f"{bw['numpy_sum_all_cores_gbps']:.1f} GB/s on {bw['threads']})")
    elif bw:
        lines.append(f"read bandwidth: {bw['best_gbps']:.1f} GB/s "
                     f"(torch sum of {bw['bytes'] / 2**30:.2g} GiB on {env.get('gpu')})")
    return lines
