"""Functions run inside the processes the distributed tests spawn (module level, so they pickle)."""

from __future__ import annotations

import numpy as np

D, M = 5, 16  # features, samples per rank


def rank_data(rank: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed * 1000 + rank)
    X = rng.normal(size=(M, D))
    y = X @ np.arange(1.0, D + 1) + 1.0 + 0.1 * rng.normal(size=M)
    return X, y


def ddp_train(rank: int, world: int, spec, f: int, byzantine: list[int], attack, steps: int, lr: float,
              bucket_cap_mb: float | None = None) -> dict:
    """Linear regression (weight + bias, float64) trained with DDP, optionally with the robust hook."""
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    from byzcore.torch import robust_hook

    model = torch.nn.Linear(D, 1).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    kwargs = {} if bucket_cap_mb is None else {"bucket_cap_mb": bucket_cap_mb}
    ddp = DDP(model, **kwargs)
    if spec is not None:
        ddp.register_comm_hook(None, robust_hook(spec, f, byzantine_ranks=byzantine, attack=attack, seed=3))
    X, y = (torch.from_numpy(a) for a in rank_data(rank))
    opt = torch.optim.SGD(ddp.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((ddp(X).squeeze(1) - y) ** 2).mean()
        loss.backward()
        opt.step()
    return {"weight": model.weight.detach().numpy().ravel().copy(), "bias": float(model.bias.item())}


def ddp_train_many(rank: int, world: int, configs: list[tuple]) -> list[dict]:
    """Several trainings in one process group (spawning is the slow part of these tests)."""
    import traceback

    out = []
    for cfg in configs:
        try:  # every rank fails alike (same kernel, same data), so the group stays in step
            out.append(ddp_train(rank, world, *cfg))
        except Exception:
            out.append({"error": traceback.format_exc()})
    return out


def sleep_forever(rank: int, world: int) -> None:
    import time

    time.sleep(3600)


def fail_on_rank1(rank: int, world: int) -> int:
    if rank == 1:
        raise RuntimeError("rank 1 fails on purpose")
    return rank * 10


def big_linear_problem(n_workers: int, *, split: str = "homogeneous", seed: int = 0):
    """A linear classifier with 10,010,000 parameters (1,000 inputs x 10,000 classes) on 48
    random samples: a model of the size the runtime must carry, on data that costs nothing."""
    import torch

    from byzcore.problems import TorchProblem

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(48, 1000))
    y = rng.integers(0, 10_000, size=48)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = torch.nn.Linear(1000, 10_000)
    return TorchProblem(module, torch.nn.functional.cross_entropy, X, y, n_workers, split=split, seed=seed,
                        classification=True, n_classes=10_000, name="linear-1e7", threads=1)


def transport_roundtrip(rank: int, world: int, d: int) -> list | None:
    """Rank 0 gathers three rounds of float32 messages from ranks 1 and 2 over the runtime's
    links; rank 2 sends a float64 message in round 1 and a too-short one in round 2 (its
    link must stay in step), rank 1 a message that claims round 0 in round 2."""
    import time

    from byzcore.distributed.transport import ServerTransport, WorkerTransport, connect_store

    store, _, _ = connect_store(60.0)
    f4 = np.dtype(np.float32)
    if rank == 0:
        server = ServerTransport(store, link_timeout_s=30.0)
        server.accept([1, 2], time.monotonic() + 60.0)
        out = []
        for seq in range(3):
            rows, status = server.gather(seq, [(0, 1), (1, 2)], d, f4, time.monotonic() + 30.0)
            out.append((status, rows[:, :3].tolist(), rows[:, -1].tolist(), rows.dtype.str))
        server.stop([1, 2])
        return out
    worker = WorkerTransport(store, rank, link_timeout_s=30.0)
    worker.join()
    for seq in range(3):
        vec = np.full(d, 10.0 * rank + seq, dtype=np.float32)
        claimed = seq
        if rank == 2 and seq == 1:
            vec = vec.astype(np.float64)
        elif rank == 2 and seq == 2:
            vec = vec[:-1]
        elif rank == 1 and seq == 2:
            claimed = 0
        worker.send(claimed, rank - 1, vec, d, f4, 30.0)
    return None


def hook_refusals(rank: int, world: int, cases: list[tuple]) -> list[str]:
    """robust_hook(spec, f) for each case inside a process group: '' when accepted, else the error."""
    from byzcore.torch import robust_hook

    out = []
    for spec, f in cases:
        try:
            robust_hook(spec, f)
            out.append("")
        except ValueError as exc:
            out.append(str(exc))
    return out
