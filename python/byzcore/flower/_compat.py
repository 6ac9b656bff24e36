"""Where Flower keeps what byzcore uses: the one place that knows its module moves.

The Message API (Flower 1.21 and later) keeps records and messages in ``flwr.app`` (earlier:
``flwr.common``), the ServerApp and Grid in ``flwr.serverapp`` (earlier: ``flwr.server``),
the ClientApp in ``flwr.clientapp`` (earlier: ``flwr.client``). Importing this module
imports Flower; nothing else in byzcore does until ``byzcore.flower`` is used.
"""

from __future__ import annotations

try:
    import flwr  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without Flower
    raise ImportError("[byzcore.flower] needs Flower: pip install 'byzcore[flower]' (or pip install flwr)") from exc

try:
    from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
except ImportError:  # Flower before the flwr.app package
    from flwr.common import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

try:
    from flwr.serverapp import Grid, ServerApp
except ImportError:
    from flwr.server import Grid, ServerApp

try:
    from flwr.clientapp import ClientApp
except ImportError:
    from flwr.client import ClientApp

try:
    from flwr.serverapp.strategy import FedAvg
except ImportError:  # pragma: no cover - Flower before 1.21 has no Message-API strategies
    FedAvg = None

from flwr.common import FitRes, Parameters, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAvg as LegacyFedAvg

__all__ = ["Array", "ArrayRecord", "ClientApp", "ConfigRecord", "Context", "FedAvg", "FitRes", "Grid", "LegacyFedAvg",
           "Message", "MetricRecord", "Parameters", "RecordDict", "ServerApp", "ndarrays_to_parameters",
           "parameters_to_ndarrays"]
