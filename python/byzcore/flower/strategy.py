"""byzcore rules as Flower strategies: :class:`ByzFedAvg` for the Message API
(``flwr.serverapp.strategy``, ``aggregate_train``) and :class:`LegacyByzFedAvg` for
``flwr.server.strategy`` (``aggregate_fit``). See docs/flower.md."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..aggregators import Aggregator
from ._compat import (
    Array,
    ArrayRecord,
    FedAvg,
    LegacyFedAvg,
    Message,
    MetricRecord,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
    read_array,
)
from ._core import RobustRound, RoundReport

_log = logging.getLogger("flwr")


def _robust_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """Per key reported by more than half of the replies, the median of its finite scalar
    values: a Byzantine minority can neither move a metric far (a reported ``num-examples`` of
    1e9 weighs as much as any other) nor add or remove a key, and malformed metrics cannot
    crash the server."""
    out = {}
    keys = {k for r in records for k in r}
    for key in sorted(keys):
        present = [r[key] for r in records if key in r]
        if 2 * len(present) <= len(records):
            continue
        vals = [float(v) for v in present
                if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)]
        vals = [v for v in vals if np.isfinite(v)]
        if vals:
            out[key] = float(np.median(vals))
    return out


def _user_metrics(fn: Any, args: Any, op: str, server_round: int) -> dict[str, Any] | None:
    """The user's own metrics aggregation (a Flower option), if given; ``None`` when it is not
    given or fails on the round's replies (logged: a Byzantine reply must not crash the server)."""
    if fn is None:
        return None
    try:
        out = fn(*args)
        return dict(out) if out is not None else {}
    except Exception as exc:
        _log.warning("%s round %d: the metrics aggregation function failed (%s: %s); robust medians used",
                     op, server_round, type(exc).__name__, exc)
        return None


_ROBUST_OPTIONS = ("mode", "per_layer", "weighted", "validate", "keep", "attack", "seed")


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """byzcore's options (those of :class:`RobustRound`) apart from Flower FedAvg's own."""
    robust = {k: v for k, v in options.items() if k in _ROBUST_OPTIONS}
    return robust, {k: v for k, v in options.items() if k not in _ROBUST_OPTIONS}


def _log_round(op: str, server_round: int, rep: RoundReport) -> None:
    _log.info("%s round %d: %s", op, server_round, rep.metrics())
    if rep.skipped:
        _log.warning("%s round %d: update skipped: %s", op, server_round, rep.reason)


if FedAvg is not None:

    class ByzFedAvg(FedAvg):
        """Flower's FedAvg (Message API) with a byzcore rule in place of the weighted average.

        The whole model is aggregated as one vector per client (arrays flattened in the global
        model's key order), or per array with ``per_layer=True``. Replies with other keys,
        shapes or dtypes are dropped as Byzantine for the round; non-finite values go to the
        rule, which handles them as docs/spec.md#nonfinite says. When too few valid replies
        remain for the rule's bound, the round keeps the global model. Each round's metrics
        carry ``byz-received``, ``byz-failed``, ``byz-dropped``, ``byz-nonfinite``,
        ``byz-rejected``, ``byz-injected``, ``byz-used`` and ``byz-skipped``.

        Parameters
        ----------
        rule : str or Aggregator
            A byzcore spec string (``"bucketing:2+median"``, docs/spec.md#spec-strings) or
            aggregator (``NNM(2) >> Krum(2)``).
        f : int or None, optional
            Byzantine clients tolerated (required with a spec string; with an aggregator it
            must equal the object's ``f`` if given).
        **options
            byzcore's ``mode``, ``per_layer``, ``weighted``, ``validate``, ``keep``, ``attack``,
            ``seed`` as in :class:`byzcore.flower.RobustRound` (``mode="update"`` by default,
            ``weighted=False``: refused for robust rules); the others are Flower FedAvg's own
            (``fraction_train``, ``min_train_nodes``, ...).

        Attributes
        ----------
        robust : RobustRound
            The round's robust aggregation.
        last_report : RoundReport or None
            What the last round did (``None`` before the first).

        Raises
        ------
        ValueError, TypeError
            Bad options (``[ByzFedAvg] ...``).

        References
        ----------
        docs/flower.md; docs/spec.md#rules.
        """

        def __init__(self, rule: str | Aggregator, f: int | None = None, **options: Any):
            robust, fedavg = _split(options)
            super().__init__(**fedavg)
            self.robust = RobustRound(rule, f, **robust, op="ByzFedAvg")
            self.current: dict[str, np.ndarray] | None = None
            self.last_report: RoundReport | None = None
            # Flower's defaults weight metrics by the reported example counts (a Byzantine
            # client's say); the user's own functions are called if given.
            self._train_metrics_fn = fedavg.get("train_metrics_aggr_fn")
            self._evaluate_metrics_fn = fedavg.get("evaluate_metrics_aggr_fn")

        def set_global(self, arrays: ArrayRecord) -> None:
            """Record the global model the clients are sent (``configure_train`` calls it)."""
            self.current = {k: np.array(v.numpy(), copy=True) for k, v in arrays.items()}

        def configure_train(self, server_round: int, arrays: ArrayRecord, config: Any, grid: Any) -> Iterable[Message]:
            """Flower's sampling, after recording the global model (updates are relative to it)."""
            self.set_global(arrays)
            return super().configure_train(server_round, arrays, config, grid)

        @staticmethod
        def _content_metrics(msg: Message) -> dict[str, Any] | None:
            """A reply's metrics as one dict, or ``None`` for a Flower error or an unreadable reply."""
            try:
                if msg.has_error():
                    return None
                metrics: dict[str, Any] = {}
                for m in msg.content.metric_records.values():
                    metrics.update(dict(m))
                return metrics
            except Exception:
                return None

        def _read(self, msg: Message) -> tuple[int, dict[str, np.ndarray] | None, Any, dict[str, Any]]:
            cid = int(msg.metadata.src_node_id)
            try:
                content = msg.content
                records = content.array_records
                record = records.get(self.arrayrecord_key)
                if record is None and len(records) == 1:
                    record = next(iter(records.values()))
                arrays = None if record is None else {k: read_array(v) for k, v in record.items()}
                metrics: dict[str, Any] = {}
                for m in content.metric_records.values():
                    metrics.update(dict(m))
                return cid, arrays, metrics.get(self.weighted_by_key), metrics
            except Exception:  # unreadable reply: dropped as Byzantine
                return cid, None, None, {}

        def aggregate_train(self, server_round: int,
                            replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
            """Robust aggregation of the round's replies; ``None`` arrays keep the global model."""
            rep = RoundReport()
            read, metric_rows, ok = [], [], []
            for msg in replies:
                try:
                    failed = msg.has_error()
                except Exception:
                    failed = True
                if failed:
                    rep.failed += 1
                    continue
                cid, arrays, num, metrics = self._read(msg)
                read.append((cid, arrays, num))
                ok.append(msg)
                if arrays is not None:
                    metric_rows.append(metrics)
            new, rep = self.robust(server_round, self.current, read, rep)
            self.last_report = rep
            _log_round("ByzFedAvg", server_round, rep)
            kept = [m.content for m, (_, arrays, _) in zip(ok, read) if arrays is not None]
            user = _user_metrics(self._train_metrics_fn, (kept, self.weighted_by_key), "ByzFedAvg", server_round)
            metrics = user if user is not None else {
                k: v for k, v in _robust_metrics(metric_rows).items() if k != self.weighted_by_key}
            metrics.update(rep.metrics())
            arrays_out = None if new is None else ArrayRecord({k: Array(np.asarray(v)) for k, v in new.items()})
            if new is not None:
                self.current = {k: np.array(v, copy=True) for k, v in new.items()}
            return arrays_out, MetricRecord(metrics)

        def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
            """The evaluation replies' metrics, robustly: per key reported by a majority, the
            median over the replies (Flower's default weights them by the reported example
            counts and refuses the whole round when one reply lacks a key); ``None`` when no
            reply is readable. A user's ``evaluate_metrics_aggr_fn`` is called instead if given."""
            contents, rows = [], []
            for msg in replies:
                metrics = self._content_metrics(msg)
                if metrics is not None:
                    contents.append(msg.content)
                    rows.append(metrics)
            if not rows:
                return None
            user = _user_metrics(self._evaluate_metrics_fn, (contents, self.weighted_by_key), "ByzFedAvg",
                                 server_round)
            return MetricRecord(user if user is not None else _robust_metrics(rows))

else:  # pragma: no cover - Flower before 1.21
    ByzFedAvg = None  # type: ignore[assignment,misc]


class LegacyByzFedAvg(LegacyFedAvg or object):  # type: ignore[misc]
    """Flower's legacy FedAvg (``flwr.server.strategy``) with a byzcore rule in place of the
    weighted average.

    As :class:`ByzFedAvg` for ``aggregate_fit(server_round, results, failures)``: the same
    options, the same round metrics (``byz-failed`` counts the ``failures``). Arrays are
    named by position (``"0"``, ``"1"``, ...). ``aggregate_fit`` returns ``None`` parameters
    when the round keeps the global model.

    Parameters
    ----------
    rule : str or Aggregator
        A byzcore spec string (docs/spec.md#spec-strings) or aggregator.
    f : int or None, optional
        Byzantine clients tolerated (required with a spec string; with an aggregator it must
        equal the object's ``f`` if given).
    **options
        byzcore's ``mode``, ``per_layer``, ``weighted``, ``validate``, ``keep``, ``attack``,
        ``seed`` as in :class:`byzcore.flower.RobustRound`; the others are the legacy
        FedAvg's own (``fraction_fit``, ``min_fit_clients``, ``initial_parameters``, ...).

    Attributes
    ----------
    robust : RobustRound
        The round's robust aggregation.
    last_report : RoundReport or None
        What the last round did (``None`` before the first).

    Raises
    ------
    ValueError, TypeError
        Bad options (``[LegacyByzFedAvg] ...``).

    References
    ----------
    docs/flower.md; docs/spec.md#rules.
    """

    def __init__(self, rule: str | Aggregator, f: int | None = None, **options: Any):
        if LegacyFedAvg is None:  # pragma: no cover - a Flower without flwr.server.strategy
            raise ImportError("[LegacyByzFedAvg] this Flower has no legacy strategies (flwr.server.strategy); "
                              "use byzcore.flower.ByzFedAvg (the Message API)")
        robust, fedavg = _split(options)
        super().__init__(**fedavg)
        self.robust = RobustRound(rule, f, **robust, op="LegacyByzFedAvg")
        self.current: dict[str, np.ndarray] | None = None
        self.last_report: RoundReport | None = None
        self._fit_metrics_fn = fedavg.get("fit_metrics_aggregation_fn")
        self._evaluate_metrics_fn = fedavg.get("evaluate_metrics_aggregation_fn")

    def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        """Flower's sampling, after recording the global model."""
        self.current = {str(i): np.array(a, copy=True) for i, a in enumerate(parameters_to_ndarrays(parameters))}
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: list, failures: list) -> tuple[Any, dict[str, Any]]:
        """Robust aggregation of the fit results; ``None`` parameters keep the global model."""
        rep = RoundReport(failed=len(failures))
        read, metric_rows, counted = [], [], []
        for i, (proxy, res) in enumerate(results):
            try:
                arrays = {str(j): a for j, a in enumerate(parameters_to_ndarrays(res.parameters))}
                num, client_metrics = res.num_examples, dict(res.metrics or {})
            except Exception:
                arrays, num, client_metrics = None, None, {}
            cid = i
            with contextlib.suppress(Exception):
                cid = int(proxy.cid)
            read.append((cid, arrays, num))
            if arrays is not None:
                metric_rows.append(client_metrics)
                counted.append((num, client_metrics))
        new, rep = self.robust(server_round, self.current, read, rep)
        self.last_report = rep
        _log_round("LegacyByzFedAvg", server_round, rep)
        user = _user_metrics(self._fit_metrics_fn, (counted,), "LegacyByzFedAvg", server_round)
        metrics: dict[str, Any] = user if user is not None else dict(_robust_metrics(metric_rows))
        metrics.update(rep.metrics())
        if new is None:
            return None, metrics
        self.current = {k: np.array(v, copy=True) for k, v in new.items()}
        return ndarrays_to_parameters([new[str(i)] for i in range(len(new))]), metrics

    def aggregate_evaluate(self, server_round: int, results: list,
                           failures: list) -> tuple[float | None, dict[str, Any]]:
        """The evaluation results, robustly: the median of the finite reported losses and, per
        metric reported by a majority, the median (the legacy FedAvg weights both by the
        reported example counts, a Byzantine client's say). A user's
        ``evaluate_metrics_aggregation_fn`` is called for the metrics instead if given."""
        if not results or (not self.accept_failures and failures):
            return None, {}
        losses, rows, counted = [], [], []
        for _, res in results:
            try:
                loss, num, metrics = float(res.loss), res.num_examples, dict(res.metrics or {})
            except Exception:  # an unreadable result is left out
                continue
            if np.isfinite(loss):
                losses.append(loss)
            rows.append(metrics)
            counted.append((num, metrics))
        user = _user_metrics(self._evaluate_metrics_fn, (counted,), "LegacyByzFedAvg", server_round)
        metrics = user if user is not None else _robust_metrics(rows)
        return (float(np.median(losses)) if losses else None), metrics
