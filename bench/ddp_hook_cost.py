"""Cost per training step of byzcore's robust DDP hook against plain all-reduce.

Spawns P gloo processes on loopback (byzcore.distributed.spawn), trains the same MLP with
DistributedDataParallel under each communication setting, and reports the median wall time
per step (forward + backward + communication + optimizer step) on rank 0, plus the time of
the communication alone on one flat gradient of the model's size::

    python bench/ddp_hook_cost.py --nprocs 4 --hidden 512 --steps 30
    python bench/ddp_hook_cost.py --rules mean median bucketing:2+median@0 trimmed_mean krum

"plain" is DDP's built-in all-reduce; every other row is robust_hook(rule, f), where
``rule@F`` sets that row's f (bucketing:2+median tolerates no Byzantine rank at 4
processes: its two bucket means need n >= 5 for f = 1). A rule the process group is too small
for prints robust_hook's refusal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


class _OneBucket:
    """What the hook reads of DDP's GradBucket, for one flat gradient outside DDP."""

    def __init__(self, buf):
        self._buf = buf

    def buffer(self):
        return self._buf

    def index(self):
        return -1


def _bench(rank: int, world: int, hidden: int, steps: int, warmup: int, rules: list, f: int, batch: int,
           threads: int) -> dict:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from byzcore.torch import robust_hook

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(rank)
    x = torch.randn(batch, 784, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    setups, out = {}, {}
    for rule in ["plain", *rules]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                    torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
        ddp = DDP(model)
        spec, _, rule_f = rule.partition("@")
        try:
            hook = None if rule == "plain" else robust_hook(spec, int(rule_f) if rule_f else f)
        except ValueError as exc:  # too few processes for this rule and f
            out[rule] = {"error": str(exc)}
            continue
        if hook is not None:
            ddp.register_comm_hook(None, hook)
        n_params = sum(p.numel() for p in model.parameters())
        setups[rule] = (ddp, torch.optim.SGD(ddp.parameters(), lr=0.01), hook, n_params)
        out[rule] = {"step": [], "comm": [], "params": n_params}

    def step(rule):
        ddp, opt, hook, n_params = setups[rule]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()

    def comm(rule):  # the communication alone, on one flat buffer the size of the model
        ddp, opt, hook, n_params = setups[rule]
        buf = torch.randn(n_params, generator=gen)
        if hook is None:
            dist.all_reduce(buf)
            buf.div_(world)
            return
        hook(None, _OneBucket(buf)).wait()

    # Interleave the settings step by step, so that load from other jobs on the machine
    # falls on all of them alike instead of on whichever ran during a busy spell.
    for i in range(warmup + steps):
        for rule in list(setups):
            for kind, fn in (("step", step), ("comm", comm)):
                try:
                    dist.barrier()
                    t0 = time.perf_counter()
                    fn(rule)
                    if i >= warmup:
                        out[rule][kind].append(time.perf_counter() - t0)
                except Exception as exc:  # e.g. a kernel that is not built (all ranks alike)
                    out[rule] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
                    del setups[rule]
                    break
    base = out["plain"]
    for rule, r in out.items():
        if "error" not in r:
            # Each step of a rule ran right after plain's step of the same round: the median of
            # those paired ratios follows the load of the moment less than a ratio of medians.
            out[rule] = {"step_ms": 1e3 * statistics.median(r["step"]), "comm_ms": 1e3 * statistics.median(r["comm"]),
                         "step_x": statistics.median(a / b for a, b in zip(r["step"], base["step"])),
                         "comm_x": statistics.median(a / b for a, b in zip(r["comm"], base["comm"])),
                         "params": r["params"]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nprocs", type=int, default=4)
    p.add_argument("--hidden", type=int, default=512, help="MLP width (784-H-H-10)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--f", type=int, default=1)
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads of each process, for torch and for byzcore's kernels (OMP_NUM_THREADS)")
    p.add_argument("--rules", nargs="*", default=["mean", "median", "trimmed_mean", "bucketing:2+median@0", "krum",
                                                   "geometric_median", "nnm+median"])
    args = p.parse_args(argv)

    # byzcore's kernels read OpenMP's thread count when a process loads them: set it before
    # the ranks start, so that the rule runs on as many threads as torch's own work.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    from byzcore.distributed import spawn

    res = spawn(_bench, args.nprocs, (args.hidden, args.steps, args.warmup, args.rules, args.f, args.batch,
                                      args.threads), timeout_s=1800)
    if 0 not in res.results:
        print(res.errors.get(0, res), file=sys.stderr)
        return 1
    rows = res.results[0]
    n = rows["plain"]["params"]
    print(f"torch {torch.__version__}, gloo, {args.nprocs} processes on loopback ({args.threads} thread each), MLP "
          f"784-{args.hidden}-{args.hidden}-10 ({n:,} parameters, {4 * n / 2**20:.2f} MiB of float32 gradients), "
          f"batch {args.batch}, f={args.f}")
    print("x plain: median over the rounds of (this step / plain's step of the same round)")
    print(f"{'communication':<22} {'step ms':>9} {'x plain':>8} {'comm ms':>9} {'x plain':>8}")
    for rule, r in rows.items():
        if "error" in r:
            print(f"{rule:<22} {r['error']}")
            continue
        print(f"{rule:<22} {r['step_ms']:9.2f} {r['step_x']:8.2f} {r['comm_ms']:9.2f} {r['comm_x']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
