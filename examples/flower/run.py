"""Honest vs attacked, Flower's FedAvg vs a byzcore rule, on Flower's simulation engine.

    python examples/flower/run.py                      # 10 clients, 3 Byzantine, sign-flip x10
    python examples/flower/run.py --attack alie        # an omniscient attack, injected on the server

Prints the test accuracy of each run and the gap the attack opens. See docs/flower.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import app as digits
import numpy as np

from byzcore.flower import ByzFedAvg, ServerAttack, byzantine_mod
from byzcore.flower._compat import Array, ArrayRecord, FedAvg, MetricRecord, ServerApp

LOCAL_ATTACKS = {"sign-flip", "gaussian", "nan", "inf", "zero", "scale"}


def simulate(strategy, parts, test, *, rounds: int, mods=(), label_flippers=frozenset()) -> float:
    """One Flower simulation; returns the final global model's test accuracy."""
    from flwr.simulation import run_simulation

    out: dict[str, float] = {}
    server = ServerApp()

    @server.main()
    def main(grid, context) -> None:
        init = ArrayRecord({k: Array(v) for k, v in digits.init_model().items()})

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            model = {k: v.numpy() for k, v in arrays.items()}
            acc = digits.accuracy(model, *test)
            out["accuracy"] = acc
            return MetricRecord({"accuracy": acc})

        strategy.start(grid=grid, initial_arrays=init, num_rounds=rounds, evaluate_fn=evaluate)

    run_simulation(server_app=server, client_app=digits.client_app(parts, label_flippers, mods),
                   num_supernodes=len(parts),
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": 2, "include_dashboard": False}})
    return out["accuracy"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--byzantine", type=int, default=3)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--rule", default="trimmed_mean", help="byzcore spec string, e.g. 'bucketing:2+median', 'nnm+krum'")
    p.add_argument("--attack", default="scale:-10",
                   help="client-side: sign-flip, gaussian, nan, inf, zero, scale:F, label-flip; "
                        "server-side (omniscient): alie, ipm, minmax, ...")
    args = p.parse_args(argv)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a Ray FutureWarning
    parts, test = digits.load(args.clients)
    f = args.byzantine
    byz = range(f)
    name = args.attack.split(":")[0]
    kw = dict(fraction_evaluate=0.0, min_train_nodes=args.clients, min_available_nodes=args.clients)

    def attacked(strategy_factory):
        if name == "label-flip":
            return simulate(strategy_factory(None), parts, test, rounds=args.rounds, label_flippers=frozenset(byz))
        if name in LOCAL_ATTACKS:
            return simulate(strategy_factory(None), parts, test, rounds=args.rounds,
                            mods=[byzantine_mod(args.attack, byz)])
        return simulate(strategy_factory(ServerAttack(args.attack, f)), parts, test, rounds=args.rounds)

    def plain(attack):
        # Flower's own FedAvg, or (for a server-side attack) byzcore's mean, which is the same average
        return FedAvg(**kw) if attack is None else ByzFedAvg("mean", f=0, attack=attack, **kw)

    def robust(attack):
        return ByzFedAvg(args.rule, f=f, attack=attack, **kw)

    rows = [("FedAvg", simulate(plain(None), parts, test, rounds=args.rounds), attacked(plain)),
            (f"byzcore {args.rule} (f={f})", simulate(robust(None), parts, test, rounds=args.rounds),
             attacked(robust))]
    print(f"\n{args.clients} clients, {f} Byzantine ({args.attack}), {args.rounds} rounds, digits test accuracy")
    print(f"{'strategy':<34} {'honest':>8} {'attacked':>9} {'gap':>7}")
    for label, honest, att in rows:
        print(f"{label:<34} {honest:8.3f} {att:9.3f} {honest - att:7.3f}")
    if not np.isfinite(rows[1][2]):
        sys.exit(1)


if __name__ == "__main__":
    main()
