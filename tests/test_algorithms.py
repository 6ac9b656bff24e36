"""Training algorithms: reproducibility, the worker/server split, and the papers' claims
(small, seeded runs of the synthetic a9a-shaped problem)."""

import math

import numpy as np
import pytest

import byzcore.algorithms as A
from byzcore import attacks, problems
from byzcore.algorithms.base import apply_attack

SMALL = dict(n_samples=3000, eval_every=10)


def _losses(res):
    return res.column("loss")


def _strip_time(metrics):
    return [{k: v for k, v in m.items() if k != "time"} for m in metrics]


def test_runs_are_reproducible():
    kw = dict(rounds=40, compressor="rand_k:20", **SMALL)
    a, b = A.run(**kw), A.run(**kw)
    assert _strip_time(a.metrics) == _strip_time(b.metrics)
    assert np.array_equal(a.x, b.x)
    c = A.run(seed=1, **kw)
    assert not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("algorithm,extra", [
    ("byz_vr_marina_pp", dict(compressor="rand_k:16", attack="shift-back")),
    ("resam", dict(attack="label-flip", clients_per_round=10)),
    ("zeno", dict(attack="alie")),
])
def test_workers_alone_reproduce_the_simulation(algorithm, extra):
    """The distributed runtime's loop: each worker computes its own row alone, the server
    gathers, applies the attack and steps. It must give the simulation's bits."""
    cfg = A.RunConfig(algorithm=algorithm, rounds=25, n_samples=2000, seed=7, **extra)
    sim = A.run(cfg)
    problem = problems.make_problem(cfg.problem, cfg.workers, split=cfg.split, seed=cfg.seed, lam=cfg.lam,
                                    n_samples=cfg.n_samples)
    alg = A.make_algorithm(cfg, problem)
    attack = attacks.make_attack(cfg.attack)
    byz = A.byzantine_ids(cfg.workers, cfg.byzantine, cfg.seed)
    bad = np.isin(np.arange(cfg.workers), byz)
    flipped = problem.with_flipped_labels(byz) if attack.flips_labels else problem
    states = {i: alg.init_worker_state() for i in range(cfg.workers)}   # one per worker process

    def round_(plan):
        rows = [alg.worker_messages(flipped if bad[i] else problem, plan, [i], states[i])[0] for i in plan.clients]
        msgs = apply_attack(attack, alg, plan, np.stack(rows), bad[plan.clients], cfg.seed)
        alg.server_step(plan, msgs)

    first = alg.initial_plan()
    if first is not None:
        round_(first)
    for k in range(1, cfg.rounds + 1):
        round_(alg.plan(k))
    assert np.array_equal(alg.model(), sim.x)


def test_clipping_beats_shift_back_under_partial_participation():
    """Malinovsky et al. 2023: with partial participation, shift-back undoes the progress of
    the unclipped method whenever Byzantines are half of the sampled clients; clipping the
    differences to alpha ||x^{k+1} - x^k|| keeps Byz-VR-MARINA-PP converging."""
    kw = dict(algorithm="byz_vr_marina_pp", attack="shift-back", workers=15, byzantine=3, clients_per_round=4,
              rounds=300, lr=0.5, p=0.1, n_samples=4000, eval_every=10)
    clipped = A.run(alpha=1.0, **kw)
    plain = A.run(alpha=math.inf, **kw)
    lc, lp = _losses(clipped), _losses(plain)
    # a GD reference: the optimum of the honest loss is about 0.443 on this data
    assert lc[-1] < 0.45
    assert np.nanmax(lc[len(lc) // 2:]) < 0.46
    assert not clipped.diverged
    assert lp[-1] > lc[-1] + 0.03 or plain.diverged
    assert np.nanmax(lp[len(lp) // 2:]) > 0.6                 # repeatedly thrown back towards x^0


@pytest.mark.parametrize("clients, clamped", [(3, True), (12, False), (None, True)])
def test_summary_counts_the_rounds_the_aggregator_clamped(clients, clamped):
    """Partial participation: median with f = 2 needs n > 4, so each partial round of 3 clients
    runs with a lowered f, counted in the summary's aggregator_clamped (docs/spec.md, aggregator
    objects); with every client in every round (12 > 4) nothing is clamped. None: the default
    ceil(12 / 4) = 3 clients per partial round."""
    res = A.run(algorithm="byz_vr_marina_pp", workers=12, byzantine=2, aggregator="median", clients_per_round=clients,
                rounds=20, n_samples=1000, eval_every=10)
    count = res.summary()["algorithm"]["aggregator_clamped"]
    if clamped:
        assert 0 < count <= 20  # at most one per round; full rounds (c_hat = 12 clients) are not clamped
    else:
        assert count == 0
    assert res.summary()["algorithm"]["f"] == 2  # the run reports the f it was given, not the clamped one


def test_linear_convergence_on_homogeneous_data():
    """With no heterogeneity (every worker holds the same data) Byz-VR-MARINA-PP converges
    linearly under the PL condition, partial participation and shift-back included."""
    res = A.run(algorithm="byz_vr_marina_pp", split="identical", n_samples=2000, lam=0.1, lr=1.0, batch=32,
                rounds=200, attack="shift-back")
    g = res.column("grad_norm")
    assert g[200] < 1e-7 * g[0]
    rates = [g[k + 50] / g[k] for k in (0, 50, 100, 150)]
    assert max(rates) < 0.05                                  # a geometric decrease in every window


def test_zeno_tolerates_a_byzantine_majority():
    """Xie et al. 2019: Zeno with b >= f keeps descending with 12 of 20 workers flipping
    signs; the coordinate-wise median, which needs an honest majority, ascends."""
    kw = dict(workers=20, byzantine=12, attack="sign-flip", rounds=100, lr=0.5, n_samples=4000, eval_every=10)
    zeno = A.run(algorithm="zeno", **kw)
    med = A.run(algorithm="sgd", aggregator="median:f=0", **kw)  # f=0: it claims no tolerance, so it may run
    assert _losses(zeno)[-1] < _losses(zeno)[0] - 0.15
    assert _losses(med)[-1] > _losses(med)[0]
    assert zeno.metrics[-1]["accepted"] == 8


def test_resam_momentum_beats_no_momentum_under_alie():
    """Farhadkhani et al. 2022: worker momentum shrinks the honest spread ALIE hides in."""
    kw = dict(algorithm="resam", aggregator="cwtm", attack="alie", batch=4, rounds=300, lr=0.1, n_samples=4000,
              eval_every=10)
    with_m = A.run(beta=0.9, **kw)
    without = A.run(beta=0.0, **kw)
    assert _losses(with_m)[-10:].mean() < _losses(without)[-10:].mean() - 0.004


def test_zeno_pp_simulated_and_threads():
    kw = dict(algorithm="zeno_pp", workers=6, byzantine=2, attack="sign-flip", rounds=150, lr=0.5, n_samples=2000,
              eval_every=10, max_delay=3, k_v=1)
    sim = A.run(**kw)
    assert _losses(sim)[-1] < _losses(sim)[0] - 0.1
    assert max(m["staleness"] for m in sim.metrics) <= 3
    assert _strip_time(A.run(**kw).metrics) == _strip_time(sim.metrics)
    thr = A.run(mode="threads", **kw)
    assert len(thr.metrics) == 16
    assert thr.metrics[-1]["round"] == 150
    assert _losses(thr)[-1] < _losses(thr)[0] - 0.1
    with pytest.raises(ValueError, match=r"^\[shift-back\]"):
        A.run(**{**kw, "attack": "shift-back", "rounds": 5})


def test_byz_vr_marina_is_the_special_case():
    res = A.run(algorithm="byz_vr_marina", attack="ipm", rounds=30, alpha=0.5, clients_per_round=3, **SMALL)
    assert res.algorithm["alpha"] is None                     # no clipping (inf)
    assert res.algorithm["clients_per_round"] == 15
    assert res.algorithm["c_hat"] == 15
    assert _losses(res)[-1] < _losses(res)[0]


def test_bytes_sent_counts_compression():
    dense = A.run(rounds=20, p=0.5, **SMALL)
    sparse = A.run(rounds=20, p=0.5, compressor="rand_k:12", **SMALL)
    full = np.array([m["full_round"] for m in dense.metrics])
    assert dense.metrics[0]["bytes_sent"] == 15 * 123 * 8      # g^0: every client's full gradient
    assert sparse.metrics[-1]["bytes_sent"] < dense.metrics[-1]["bytes_sent"]
    assert {"round", "loss", "grad_norm", "accuracy", "bytes_sent", "time"} <= set(dense.metrics[-1])
    assert full[0] == 1


@pytest.mark.parametrize("algorithm", ["byz_vr_marina_pp", "sgd", "resam", "zeno", "zeno_pp"])
@pytest.mark.parametrize("attack", ["none", "sign-flip", "ipm", "alie", "gaussian", "label-flip", "nan", "inf",
                                    "mimic", "shift-back"])
def test_every_attack_runs_with_every_algorithm(algorithm, attack):
    kw = dict(algorithm=algorithm, attack=attack, rounds=6, n_samples=600, workers=7, byzantine=2, eval_every=1,
              aggregator="trimmed_mean")
    if algorithm == "zeno_pp" and attack == "shift-back":
        with pytest.raises(ValueError, match="shift-back"):
            A.run(**kw)
        return
    res = A.run(**kw)
    assert len(res.metrics) == 7
    assert not res.diverged                                   # non-finite messages never reach the model
    assert all(math.isfinite(m["loss"]) for m in res.metrics)


def test_torch_problem_trains():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    res = A.run(algorithm="resam", problem="mlp_digits", workers=5, byzantine=1, attack="sign-flip",
                aggregator="median", rounds=40, lr=0.5, eval_every=10)
    assert res.final["accuracy"] > 0.5
    assert _losses(res)[-1] < _losses(res)[0]


def test_config_errors():
    with pytest.raises(ValueError, match=r"^\[run\] unknown algorithm"):
        A.run(algorithm="adam")
    with pytest.raises(ValueError, match=r"^\[run\] unknown configuration keys"):
        A.run({"rounds": 1, "lrr": 0.1})
    with pytest.raises(ValueError, match=r"^\[run\] byzantine"):
        A.run(byzantine=15, rounds=1, **SMALL)
    with pytest.raises(ValueError, match=r"^\[compressor\]"):
        A.run(compressor="top_k:3", rounds=1, **SMALL)
    with pytest.raises(ValueError, match=r"^\[byz_vr_marina_pp\] p"):
        A.run(p=0.0, rounds=1, **SMALL)
    with pytest.raises(ValueError, match=r"^\[run\] mode"):
        A.run(mode="threads", rounds=1, **SMALL)


def test_parse_compressor_reads_specs_with_the_one_parser():
    from byzcore.algorithms import parse_compressor

    assert parse_compressor(None, 10) is None
    assert parse_compressor("none", 10) is None
    assert parse_compressor(" Identity ", 10) is None
    assert parse_compressor("rand_k:3", 10) == 3
    assert parse_compressor("Rand-K:10", 10) == 10 == parse_compressor("rand_k:k=10", 10)
    assert parse_compressor("randk:1", 10) == 1
    for bad, why in [("top_k:3", "unknown compressor"), ("rand_k", "needs K"), ("rand_k:0", r"1\.\.d=10"),
                     ("rand_k:11", r"1\.\.d=10"), ("rand_k:2**63", "must be a int"), ("rand_k:1.5", "must be a int"),
                     ("rand_k:3,seed=1", "unknown option"), ("rand_k:3,k=3", "given twice"),
                     ("rand_k:3+rand_k:2", "must be a int"), (f"rand_k:{2**64}", r"1\.\.d=10")]:
        with pytest.raises(ValueError, match=rf"^\[compressor\] .*{why}"):
            parse_compressor(bad, 10)
    with pytest.raises(TypeError, match=r"^\[compressor\]"):
        parse_compressor(3, 10)
