"""A small Flower app: softmax regression on scikit-learn's digits, split over clients.

Used by ``run.py`` (honest vs attacked, FedAvg vs a byzcore rule) and importable on its
own. Everything is NumPy; the model is ``{"w": (64, 10), "b": (10,)}`` float64.
"""

from __future__ import annotations

import numpy as np

from byzcore.flower import flip_labels
from byzcore.flower._compat import Array, ArrayRecord, ClientApp, Context, Message, MetricRecord, RecordDict

CLASSES = 10


def load(num_clients: int, seed: int = 0):
    """Digits, standardised, 75/25 train/test; the training set split IID over clients."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    cut = int(0.75 * len(y))
    parts = np.array_split(np.arange(cut), num_clients)
    return [(X[p], y[p]) for p in parts], (X[cut:], y[cut:])


def init_model() -> dict[str, np.ndarray]:
    return {"w": np.zeros((64, CLASSES)), "b": np.zeros(CLASSES)}


def _probs(model: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    z = X @ model["w"] + model["b"]
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def loss(model: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        p = _probs(model, X)
        return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))


def accuracy(model: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(np.mean(np.argmax(X @ model["w"] + model["b"], 1) == y))


def local_train(model: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, epochs: int = 5, lr: float = 0.5):
    w, b = model["w"].copy(), model["b"].copy()
    onehot = np.eye(CLASSES)[y]
    for _ in range(epochs):
        g = _probs({"w": w, "b": b}, X) - onehot
        w -= lr * X.T @ g / len(y)
        b -= lr * g.mean(0)
    return {"w": w, "b": b}


def client_app(parts, label_flippers=frozenset(), mods=()) -> ClientApp:
    """A ClientApp training on ``parts[partition-id]``; partitions in ``label_flippers`` train
    on flipped labels (the label-flip attack lives in the client's data, not in a mod)."""
    app = ClientApp(mods=list(mods))

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        X, y = parts[pid]
        if pid in label_flippers:
            y = flip_labels(y, CLASSES)
        model = {k: v.numpy() for k, v in msg.content["arrays"].items()}
        new = local_train(model, X, y)
        content = RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in new.items()}),
                              "metrics": MetricRecord({"num-examples": len(y), "train-loss": loss(new, X, y)})})
        return Message(content=content, reply_to=msg)

    return app
