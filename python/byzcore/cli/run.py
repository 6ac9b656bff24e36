"""``byzcore run``: one robust-training experiment from the shell.

With no arguments it runs Byz-VR-MARINA-PP with clipping on the synthetic a9a-shaped problem
(homogeneous split, 15 workers, 3 Byzantine running the shift-back attack, 4 clients
per round), writes
``runs/<algorithm>_<problem>_<attack>_s<seed>/{metrics.jsonl, summary.json, curves.png}``
and prints a short summary. Every option maps one to one onto
:class:`byzcore.algorithms.RunConfig`, so ``byzcore.algorithms.run(...)`` does the same from
Python; the run itself is :func:`byzcore.experiments.run_experiment`.
"""

from __future__ import annotations

import argparse
import sys

from ..algorithms import ALGORITHMS, RunConfig, algorithm_name
from ..attacks import available_attacks
from ..experiments import BACKENDS, default_out_dir, run_experiment, save_result, summary_lines
from ..experiments.plots import have_matplotlib
from ..problems import available_problems

__all__ = ["add_arguments", "add_distributed_arguments", "config_from_args", "main"]


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number (or inf), got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``byzcore run`` options to ``parser`` and set ``func``.

    Parameters
    ----------
    parser
        The ``run`` subcommand's parser (or any parser: the torchrun entry point uses one).
    """

    d = RunConfig()
    g = parser.add_argument_group("experiment")
    g.add_argument("--algorithm", default=d.algorithm, help=f"one of: {', '.join(ALGORITHMS)}")
    g.add_argument("--problem", default=d.problem, help=f"one of: {', '.join(available_problems())}")
    g.add_argument("--split", default=d.split, metavar="SPLIT",
                   help="how the data is split across workers: homogeneous, heterogeneous (= extreme), identical, "
                        "dirichlet:ALPHA, gamma:GAMMA")
    g.add_argument("--workers", type=int, default=d.workers, help="number of workers n")
    g.add_argument("--byzantine", type=int, default=d.byzantine,
                   help="number of Byzantine workers (chosen by the seed)")
    g.add_argument("--declared-f", type=int, default=None, metavar="F",
                   help="the f the rule (and zeno's b) is told (default: --byzantine)")
    g.add_argument("--attack", default=d.attack,
                   help=f"one of: {', '.join(available_attacks())}; options as name:key=value (e.g. ipm:eps=0.5, "
                        "shift-back:when=half to attack when Byzantines are at least half, not a strict majority)")
    g.add_argument("--aggregator", default=d.aggregator, metavar="SPEC",
                   help="robust rule, composable: e.g. median, bucketing:2+median, nnm+krum, cc:tau=1")
    g.add_argument("--clients-per-round", type=int, default=None, metavar="C",
                   help="clients sampled per round (default: all; byz_vr_marina_pp: ceil(n/4))")
    g.add_argument("--rounds", type=int, default=d.rounds, help="rounds (for zeno_pp: arrivals)")
    g.add_argument("--lr", type=_float, default=d.lr, help="step size gamma")
    g.add_argument("--alpha", type=_float, default=d.alpha,
                   help="byz_vr_marina_pp clip multiplier: lambda = alpha ||x^{k+1} - x^k||; inf = no clipping")
    g.add_argument("--p", type=_float, default=d.p, help="byz_vr_marina(_pp): probability of a full-gradient round")
    g.add_argument("--compressor", default=d.compressor, help="none or rand_k:K")
    g.add_argument("--batch", type=int, default=d.batch, help="minibatch per worker (0 = full local gradient)")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of every random draw")
    g.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default runs/<algorithm>_<problem>_<attack>_s<seed>)")
    s = parser.add_argument_group("problem and recording")
    s.add_argument("--lam", type=_float, default=d.lam, help="weight of the regulariser")
    s.add_argument("--reg", default=d.reg, choices=["nonconvex", "l2"],
                   help="logistic regression's regulariser: lam sum x^2/(1+x^2), or lam ||x||^2 (the MARINA-PP papers)")
    s.add_argument("--optimality-gap", action="store_true",
                   help="record gap = f(x) - f* (f* solved once per problem and cached)")
    s.add_argument("--n-samples", type=int, default=None, help="rows of the synthetic dataset (default 32,561)")
    s.add_argument("--eval-every", type=int, default=d.eval_every, help="record metrics every this many rounds")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--no-plot", action="store_true", help="do not write curves.png")
    a = parser.add_argument_group("algorithm-specific")
    a.add_argument("--c-hat", type=int, default=None, help="byz_vr_marina_pp: clients in full rounds (default n)")
    a.add_argument("--attack-space", default=d.attack_space, choices=["difference", "estimator"],
                   help="byz_vr_marina(_pp): Byzantines replace Delta_i, "
                   "or the full estimator g + Delta_i (authors' code)")
    a.add_argument("--clip-alpha", type=_float, default=None,
                   help="sgd / resam: clipping heuristic g = g + F(clip_lambda(m_i - g)), "
                   "lambda = alpha ||x^k - x^{k-1}||")
    a.add_argument("--local-steps", type=int, default=d.local_steps, help="sgd / resam: FedAvg-style local steps")
    a.add_argument("--beta", type=_float, default=d.beta, help="resam: worker momentum")
    a.add_argument("--rho", type=_float, default=None, help="zeno / zeno_pp: weight of ||u||^2 in the score "
                   "(default 5e-4 / 1e-3)")
    a.add_argument("--zeno-b", type=int, default=None, help="zeno: candidates dropped per round (default: --byzantine)")
    a.add_argument("--zeno-penalty", default=d.zeno_penalty, choices=["sum", "mean"],
                   help="zeno: rho ||u||^2 (paper) or rho ||u||^2 / d (authors' code)")
    a.add_argument("--n-r", type=int, default=d.n_r, help="zeno / zeno_pp: validation minibatch size")
    a.add_argument("--eps", type=_float, default=d.eps, help="zeno_pp: acceptance slack epsilon")
    a.add_argument("--k-v", type=int, default=d.k_v, help="zeno_pp: arrivals between validation-gradient refreshes")
    a.add_argument("--max-delay", type=int, default=d.max_delay,
                   help="zeno_pp: staleness drawn uniformly in 0..max_delay")
    a.add_argument("--mode", default=d.mode, choices=["simulated", "threads"],
                   help="zeno_pp: seeded staleness model, or real concurrent worker threads")
    add_distributed_arguments(parser)  # --backend, --nprocs, --timeout
    parser.set_defaults(func=main)


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``byzcore run`` gains for the torch-distributed backend."""
    g = parser.add_argument_group("distributed backend")
    g.add_argument("--backend", choices=list(BACKENDS), default="simulation",
                   help="simulation: one process; torch-distributed: rank 0 server + worker processes on loopback")
    g.add_argument("--nprocs", type=int, default=None,
                   help="processes for --backend torch-distributed (default: workers + 1)")
    g.add_argument("--timeout", type=float, default=30.0,
                   help="seconds the server waits for a round's messages before treating a worker as absent")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The :class:`~byzcore.algorithms.RunConfig` the parsed ``byzcore run`` options describe."""
    return RunConfig(
        algorithm=args.algorithm, problem=args.problem, split=args.split, workers=args.workers,
        byzantine=args.byzantine, attack=args.attack, aggregator=args.aggregator,
        clients_per_round=args.clients_per_round, rounds=args.rounds, lr=args.lr, alpha=args.alpha, p=args.p,
        compressor=args.compressor, batch=args.batch, seed=args.seed, lam=args.lam, reg=args.reg,
        n_samples=args.n_samples, eval_every=args.eval_every, declared_f=args.declared_f,
        optimality_gap=args.optimality_gap, c_hat=args.c_hat, attack_space=args.attack_space,
        clip_alpha=args.clip_alpha, local_steps=args.local_steps, beta=args.beta, rho=args.rho, zeno_b=args.zeno_b,
        zeno_penalty=args.zeno_penalty, n_r=args.n_r, eps=args.eps, k_v=args.k_v, max_delay=args.max_delay,
        mode=args.mode)


def main(args: argparse.Namespace) -> int:
    """``byzcore run``: run, write the files, print the summary; 0, or 2 with the reason on
    stderr when the configuration is refused or the run fails."""
    cfg = config_from_args(args)
    try:
        cfg.algorithm = algorithm_name(cfg.algorithm)
    except ValueError as exc:
        print(f"byzcore run: {exc}", file=sys.stderr)
        return 2
    out = args.out or default_out_dir(cfg)
    try:
        result = run_experiment(cfg, backend=args.backend, nprocs=args.nprocs, timeout_s=args.timeout,
                                progress=not args.no_progress)
    except (ValueError, TypeError, ImportError, RuntimeError) as exc:
        print(f"byzcore run: {exc}", file=sys.stderr)
        return 2
    paths = save_result(result, out, plot=not args.no_plot)
    for line in summary_lines(result):
        print(line)
    missing = "" if args.no_plot or have_matplotlib() else " (no curves.png: matplotlib is not installed)"
    print(f"  wrote {', '.join(paths)}{missing}")
    return 0
