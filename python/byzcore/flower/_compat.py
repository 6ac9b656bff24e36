"""Where Flower keeps what byzcore uses: the one place that knows its module moves.

The Message API (Flower 1.21 and later) keeps records and messages in ``flwr.app`` (earlier:
``flwr.common``), the ServerApp and Grid in ``flwr.serverapp`` (earlier: ``flwr.server``),
the ClientApp in ``flwr.clientapp`` (earlier: ``flwr.client``). Importing this module
imports Flower; nothing else in byzcore does until ``byzcore.flower`` is used.
"""

from __future__ import annotations

import io

import numpy as np

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

# The legacy API (``flwr.server.strategy``): Flower 1.2x keeps its helpers in ``flwr.common``
# as re-exports of ``flwr.compat.common``; where both are gone, only LegacyByzFedAvg is.
try:
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
except ImportError:  # pragma: no cover - a Flower without the flwr.common re-exports
    try:
        from flwr.compat.common.parameter import ndarrays_to_parameters, parameters_to_ndarrays
    except ImportError:
        ndarrays_to_parameters = parameters_to_ndarrays = None

try:
    from flwr.server.strategy import FedAvg as LegacyFedAvg
except ImportError:  # pragma: no cover - a Flower without the legacy strategies
    LegacyFedAvg = None
if parameters_to_ndarrays is None:  # pragma: no cover
    LegacyFedAvg = None

_NUMPY_STYPE = "numpy.ndarray"  # Flower's SType.NUMPY: ``data`` holds the array in .npy format
_PLAIN_KINDS = frozenset("biufc")


def read_array(array: Array) -> np.ndarray:
    """A reply's ``Array`` as a read-only NumPy view of its bytes, without copying them.

    ``Array.numpy()`` copies the payload (``np.load``); at 10 replies of 1.1e7 float32
    parameters that copy was a quarter of the round. Here the ``.npy`` header is parsed and
    the array viewed in place, for a plain numeric C-ordered payload whose size matches its
    header exactly. Anything else (another serialisation, Fortran order, a header that does
    not match the payload) goes through ``Array.numpy()``, which raises on malformed input
    (the strategy then drops the reply as Byzantine).

    Parameters
    ----------
    array : flwr Array
        One array of a reply's ``ArrayRecord``.

    Returns
    -------
    numpy.ndarray
        The array (read-only when viewed in place).
    """
    data = getattr(array, "data", None)
    if getattr(array, "stype", None) != _NUMPY_STYPE or not isinstance(data, bytes):
        return array.numpy()
    try:
        fp = io.BytesIO(data)
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            return array.numpy()
        count = 1
        for size in shape:
            count *= int(size)
        offset = fp.tell()
        if fortran or dtype.hasobject or dtype.kind not in _PLAIN_KINDS or len(data) - offset != count * dtype.itemsize:
            return array.numpy()
        return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
    except ValueError:  # a malformed header: let Flower's own reader say so
        return array.numpy()

__all__ = ["Array", "ArrayRecord", "ClientApp", "ConfigRecord", "Context", "FedAvg", "Grid", "LegacyFedAvg",
           "Message", "MetricRecord", "RecordDict", "ServerApp", "ndarrays_to_parameters",
           "parameters_to_ndarrays", "read_array"]
