"""Byzantine-robust DistributedDataParallel in one line: an MLP on scikit-learn's digits.

Every rank trains on its own shard; one rank can be made Byzantine (it sends a scaled,
sign-flipped gradient). Launch with torchrun (gloo on CPU, NCCL when CUDA is available)::

    torchrun --standalone --nproc-per-node 5 examples/ddp_robust_hook.py --rule bucketing:2+median --f 1 --byzantine-rank 3
    torchrun --standalone --nproc-per-node 5 examples/ddp_robust_hook.py --rule plain --byzantine-rank 3   # breaks

(bucketing:2+median with f = 1 needs 5 processes: 3 bucket means for the median; at 4 use
``--rule median``.)

Rank 0 prints the test accuracy every few epochs.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from byzcore.torch import robust_hook


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rule", default="bucketing:2+median", help="byzcore aggregator spec, or 'plain' for all-reduce")
    p.add_argument("--f", type=int, default=1)
    p.add_argument("--byzantine-rank", type=int, action="append", default=[])
    p.add_argument("--attack", default="scale:factor=-20")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args()

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if cuda else "cpu")

    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[:300], order[300:]
    shard = train[rank::world]  # this rank's data
    Xs, ys = X[shard].to(device), y[shard].to(device)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)).to(device)
    ddp = DDP(model, device_ids=[device.index] if cuda else None)
    if args.rule != "plain" or args.byzantine_rank:
        rule = "mean" if args.rule == "plain" else args.rule
        ddp.register_comm_hook(None, robust_hook(rule, args.f, byzantine_ranks=args.byzantine_rank,
                                                 attack=args.attack if args.byzantine_rank else None))
    opt = torch.optim.SGD(ddp.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        for i in range(0, len(ys), 32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(ddp(Xs[i:i + 32]), ys[i:i + 32]).backward()
            opt.step()
        if rank == 0 and (epoch % 5 == 0 or epoch == args.epochs):
            with torch.no_grad():
                acc = (model(X[test].to(device)).argmax(1).cpu() == y[test]).float().mean().item()
            print(f"epoch {epoch:3d}  test accuracy {acc:.3f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
