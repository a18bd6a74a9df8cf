"""Verdicts on synthetic run folders built to PASS, FAIL or stay INCONCLUSIVE, and the
published-vs-reproduced table."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mpdsnn.errors import UserError
from mpdsnn.verdicts import (
    PUBLISHED,
    PublishedResult,
    check_claims,
    claims_markdown,
    compare_published,
    main,
    published_markdown,
)
from mpdsnn.verdicts.claims import TARGET_RATE
from mpdsnn.verdicts.stats import bootstrap_interval, t_interval, t_quantile_pure
from mpdsnn.runfolder.reader import read_runs
from verdict_runs import write_family, write_run

GOOD_ACC = {"vanilla": [93.0, 93.3, 93.1], "at": [93.8, 94.0, 93.9],
            "tgo": [94.3, 94.6, 94.4], "ds-atgo": [95.0, 95.2, 94.9]}


def _rates(level, seeds=3, layers=6, T=2, spread=0.0, noise=0.002, seed=0):
    """Per-seed ``[layers, T]`` firing rates around ``level``; ``spread`` between t=1 and t=T."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-spread / 2, spread / 2, T)
    return [level + ramp + rng.normal(0, noise, (layers, T)) for _ in range(seeds)]


def _grad(levels):
    return [np.full(6, v) for v in levels]


def _verdicts(root, **kw):
    return {r.claim: r for r in check_claims([root], **kw)}


@pytest.fixture(scope="module")
def passing(tmp_path_factory):
    """A family built so that every claim holds."""
    root = tmp_path_factory.mktemp("pass")
    write_family(root, GOOD_ACC,
                 rates={"ds-atgo": _rates(0.1587), "vanilla": _rates(0.10, spread=0.10)},
                 grad={"ds-atgo": _grad([0.40, 0.41, 0.405]), "vanilla": _grad([0.12, 0.13, 0.11])},
                 batch=[94.9, 95.3, 94.8])
    return root


def test_every_claim_passes_on_runs_built_to_pass(passing):
    results = _verdicts(passing)
    assert {c: r.verdict for c, r in results.items()} == dict.fromkeys(
        ["C1", "C2", "C3", "C4", "C5"], "PASS")
    c3 = results["C3"]
    diffs = np.array(GOOD_ACC["ds-atgo"]) - np.array(GOOD_ACC["vanilla"])
    assert c3.effect == pytest.approx(diffs.mean())
    half = 4.302652729749 * diffs.std(ddof=1) / math.sqrt(3)
    assert (c3.ci_low, c3.ci_high) == pytest.approx((diffs.mean() - half, diffs.mean() + half))
    assert c3.n == 3 and "bootstrap" in c3.detail and "+1.71, inside" in c3.detail
    c2 = results["C2"]
    assert c2.effect == pytest.approx(100 * (0.405 - 0.12))
    assert "layers 4-5 of 6" in c2.detail and "relative gain +237.5 %" in c2.detail
    assert "vanilla < at: PASS" in results["C4"].detail
    assert results["C1"].group == "cifar10 / resnet19 / T=2 / 3 epochs"


@pytest.mark.parametrize("claim, build, reason", [
    ("C1", dict(rates={"ds-atgo": _rates(0.10), "vanilla": _rates(0.10, spread=0.10)}),
     "outside the band at t = 1, 2"),
    ("C1", dict(rates={"ds-atgo": _rates(0.1587, spread=0.03),
                       "vanilla": _rates(0.1587, spread=0.0)}), "Part 2 FAIL"),
    ("C2", dict(grad={"ds-atgo": _grad([0.10, 0.11, 0.12]), "vanilla": _grad([0.3, 0.31, 0.3])}),
     "interval below 0"),
    ("C3", dict(acc={**GOOD_ACC, "ds-atgo": [92.0, 92.1, 92.2]}), "interval below 0"),
    ("C4", dict(acc={**GOOD_ACC, "tgo": [93.0, 93.2, 93.1]}), "at < tgo: FAIL"),
    ("C5", dict(batch=[90.0, 90.2, 89.9]), "interval outside +-1"),
])
def test_claim_fails_on_runs_built_to_fail(tmp_path, claim, build, reason):
    write_family(tmp_path, build.pop("acc", GOOD_ACC), **build)
    result = _verdicts(tmp_path)[claim]
    assert result.verdict == "FAIL", result.detail
    assert reason in result.detail


@pytest.mark.parametrize("claim, build, reason", [
    # seed means 12, 14, 16 %: deviation interval [-6.8, +3.1] crosses the -2 band edge
    ("C1", dict(rates={"ds-atgo": [np.full((6, 2), v) for v in (0.12, 0.14, 0.16)]}),
     "crosses the band edge"),
    ("C2", dict(grad={"ds-atgo": _grad([0.35, 0.25, 0.31]), "vanilla": _grad([0.3] * 3)}),
     "interval straddles 0"),
    ("C3", dict(acc={**GOOD_ACC, "ds-atgo": [94.0, 92.3, 93.6]}), "interval straddles 0"),
    ("C4", dict(acc={k: v for k, v in GOOD_ACC.items() if k != "tgo"}), "no tgo runs"),
    ("C5", dict(batch=[95.0, 93.2, 96.9]), "crosses the +-1 margin"),
])
def test_claim_is_inconclusive_when_the_interval_straddles(tmp_path, claim, build, reason):
    write_family(tmp_path, build.pop("acc", GOOD_ACC), **build)
    result = _verdicts(tmp_path)[claim]
    assert result.verdict == "INCONCLUSIVE", result.detail
    assert reason in result.detail


def test_two_seeds_give_inconclusive_for_every_claim_despite_large_effects(tmp_path):
    acc = {m: v[:2] for m, v in GOOD_ACC.items()}
    acc["ds-atgo"] = [99.0, 99.1]  # a huge gain: still no verdict from two seeds
    write_family(tmp_path, acc, batch=[99.0, 99.1],
                 rates={"vanilla": _rates(0.1, seeds=2, spread=0.1)},
                 grad={"ds-atgo": _grad([0.9, 0.9]), "vanilla": _grad([0.1, 0.1])})
    results = _verdicts(tmp_path)
    assert {r.verdict for r in results.values()} == {"INCONCLUSIVE"}
    assert "only 2 seed pair(s), need >= 3" in results["C3"].detail
    assert results["C3"].effect == pytest.approx(np.mean([6.0, 5.8]))
    assert "only 2 seed(s) with probes" in results["C1"].detail


def test_missing_inputs_give_inconclusive_not_errors(tmp_path):
    for seed in range(3):
        write_run(tmp_path, method="ds-atgo", seed=seed, best=95.0, probes=False)
    results = _verdicts(tmp_path)
    assert results["C1"].detail == "no probes/timesteps.csv in the ds-atgo runs"
    assert "probes/layers.csv" in results["C2"].detail
    assert results["C5"].detail == "no ds-atgo run reports test_acc_batch_thresholds"
    assert {r.verdict for r in results.values()} == {"INCONCLUSIVE"}


def test_c1_uses_the_last_probe_and_reports_per_timestep_rates(passing):
    # the writer's first probe has rates of 50 %: using it would FAIL C1
    c1 = _verdicts(passing)["C1"]
    assert c1.verdict == "PASS"
    assert abs(c1.effect) < 0.5 and f"{TARGET_RATE:.2f} %" in c1.unit
    assert "t=1: 15." in c1.detail and "t=2: 15." in c1.detail


def test_accuracy_choice_switches_the_compared_column(tmp_path):
    # best accuracies favour ds-atgo, last-epoch ones favour vanilla
    for seed in range(3):
        write_run(tmp_path, method="ds-atgo", seed=seed, best=95.0 + 0.1 * seed, last=90.0)
        write_run(tmp_path, method="vanilla", seed=seed, best=93.0, last=92.0 + 0.1 * seed)
    assert _verdicts(tmp_path)["C3"].verdict == "PASS"
    last = _verdicts(tmp_path, accuracy="last")["C3"]
    assert last.verdict == "FAIL" and "last-epoch accuracy" in last.detail
    with pytest.raises(UserError, match="unknown accuracy 'top5'"):
        check_claims([tmp_path], accuracy="top5")


def test_settings_are_kept_apart_and_variants_left_out(tmp_path):
    write_family(tmp_path, GOOD_ACC)
    write_family(tmp_path, {"ds-atgo": [80.0], "vanilla": [79.0]}, T=4, pipeline="t4")
    # the code's width rule is a different method: it must not pair with the defaults
    write_run(tmp_path, method="ds-atgo", seed=7, best=10.0, pipeline="code",
              method_options={"tgo_rule": "code"})
    results = check_claims([tmp_path])
    groups = sorted({r.group for r in results})
    assert groups == ["cifar10 / resnet19 / T=2 / 3 epochs", "cifar10 / resnet19 / T=4 / 3 epochs"]
    c3 = next(r for r in results if r.claim == "C3" and "T=2" in r.group)
    assert c3.n == 3 and c3.verdict == "PASS"
    runs = read_runs([tmp_path]).finished
    assert runs.loc[runs["seed"] == 7, "variant"].item() == "tgo_rule=code"


def test_duplicate_seed_and_unfinished_runs(tmp_path):
    write_run(tmp_path, method="ds-atgo", seed=0, best=95.0)
    write_run(tmp_path, method="ds-atgo", seed=1, best=95.0, status="running")
    runs = read_runs([tmp_path]).finished
    assert runs["seed"].tolist() == [0]  # the unfinished run is listed, not used
    newer = write_run(tmp_path, method="ds-atgo", seed=0, best=94.0, pipeline="again")
    tables = read_runs([tmp_path])
    assert tables.finished["path"].tolist() == [str(newer.resolve())]  # one seed counts once
    assert "duplicate of" in tables.skipped[0].reason


def test_bad_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no run folders"):
        read_runs([tmp_path])
    with pytest.raises(UserError, match="is not a directory"):
        read_runs([tmp_path / "missing"])
    run = write_run(tmp_path, method="vanilla", seed=0)
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["best_test_acc"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(UserError, match="lacks best_test_acc"):
        read_runs([tmp_path]).finished


def test_markdown_lists_verdicts_per_setting(passing):
    text = claims_markdown(check_claims([passing]))
    assert "### cifar10 / resnet19 / T=2 / 3 epochs" in text
    assert text.count("**PASS**") == 5
    assert "- C5: Running thresholds" in text and "Intervals:" in text
    assert "no claim to check" in claims_markdown([])


def test_cli_prints_tables_writes_json_and_exits_zero(passing, tmp_path, capsys):
    out = tmp_path / "claims.json"
    assert main([str(passing), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## Claims checked on these runs" in printed
    assert "## Published vs reproduced" in printed and "cifar100" not in printed
    data = json.loads(out.read_text())
    assert [c["verdict"] for c in data["claims"]] == ["PASS"] * 5
    ds = next(p for p in data["published"] if p["method"] == "ds-atgo")
    assert ds["n"] == 3 and ds["inside"] == "no"
    assert ds["reproduced_mean"] == pytest.approx(95.033333)
    assert next(p for p in data["published"] if p["method"] == "tet")["inside"] == "not run"


def test_cli_errors_exit_two(tmp_path, passing, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no run folders" in capsys.readouterr().err
    assert main([str(passing), "--dataset", "cifar100"]) == 2
    err = capsys.readouterr().err
    assert "no runs of dataset 'cifar100'; datasets in these runs: cifar10" in err


def test_cli_with_runs_of_other_methods_only(tmp_path, capsys):
    write_run(tmp_path, method="tet", seed=0, best=94.0)
    assert main([str(tmp_path)]) == 0
    assert "no claim to check" in capsys.readouterr().out


# --- published numbers --------------------------------------------------------------------

def _runs(rows):
    return pd.DataFrame([dict(method="ds-atgo", dataset="cifar10", model="resnet19", T=2,
                              epochs=400, variant="", **r) for r in rows])


def test_published_inside_outside_and_not_run():
    inside = _runs([dict(seed=s, best_test_acc=a, last_test_acc=a - 1)
                    for s, a in enumerate([96.8, 96.9, 97.0])])
    table = compare_published(inside)
    row = table[(table["method"] == "ds-atgo") & (table["dataset"] == "cifar10")].iloc[0]
    assert row["inside"] == "yes" and row["n"] == 3
    assert row["reproduced_mean"] == pytest.approx(96.9)
    assert row["difference"] == pytest.approx(96.9 - 96.91)
    assert row["compared"] == "best-test"
    assert len(table) == len(PUBLISHED)  # one row per entry: every other entry is "not run"
    assert (table["inside"] == "not run").sum() == len(PUBLISHED) - 1
    outside = _runs([dict(seed=s, best_test_acc=a, last_test_acc=a)
                     for s, a in enumerate([95.0, 95.1, 95.2])])
    assert compare_published(outside).iloc[0]["inside"] == "no"
    single = _runs([dict(seed=0, best_test_acc=96.9, last_test_acc=96.9)])
    row = compare_published(single).iloc[0]
    assert row["inside"] == "n/a" and row["n"] == 1 and math.isnan(row["ci_low"])


def test_selection_rule_picks_and_labels_the_compared_accuracy():
    runs = _runs([dict(seed=s, best_test_acc=97.0 + 0.1 * s, last_test_acc=96.0 + 0.1 * s)
                  for s in range(3)])
    base = dict(method="ds-atgo", dataset="cifar10", model="resnet19", T=2, accuracy=96.5,
                std=None, n_seeds=None, source="test", basis="test")
    entries = [PublishedResult(selection=s, **base) for s in ("best-test", "last-epoch",
                                                              "unstated")]
    table = compare_published(runs, entries)
    assert table["compared"].tolist() == ["best-test", "last-epoch",
                                          "best-test (default; rule unstated)"]
    assert table["reproduced_mean"].tolist() == pytest.approx([97.1, 96.1, 97.1])
    with pytest.raises(ValueError, match="selection must be one of"):
        PublishedResult(selection="max", **base)


def test_published_keeps_training_lengths_and_variants_apart():
    runs = pd.concat([
        _runs([dict(seed=s, best_test_acc=96.9, last_test_acc=96.9) for s in range(3)]),
        _runs([dict(seed=s, best_test_acc=50.0, last_test_acc=50.0) for s in range(2)])
        .assign(epochs=1),
        _runs([dict(seed=9, best_test_acc=10.0, last_test_acc=10.0)]).assign(variant="fc=2"),
    ])
    table = compare_published(runs, [PUBLISHED[0]])
    method = PUBLISHED[0].method
    assert table["method"].tolist() == [method, method, f"{method} (fc=2)"]
    assert table["epochs"].tolist() == [1.0, 400.0, 400.0]
    assert table["n"].tolist() == [2, 3, 1]
    assert table["reproduced_mean"].tolist() == pytest.approx([50.0, 96.9, 10.0])
    with pytest.raises(UserError, match="lacks column"):
        compare_published(runs.drop(columns="best_test_acc"))


def test_published_markdown_shows_sources_and_not_run_rows():
    runs = _runs([dict(seed=s, best_test_acc=96.9, last_test_acc=96.9) for s in range(3)])
    text = published_markdown(compare_published(runs))
    assert "| ds-atgo | cifar10 | resnet19 | 2 | 96.91 +- 0.12 | best-test | 400 | " \
           "96.90 +- 0.00 (3) |" in text
    assert "| tet | cifar100 | resnet19-std | 2 | 72.87 +- 0.10 |" in text and "not run" in text
    assert "arXiv 2511.13050" in text and "Selection: unstated" in text


def test_registry_entries_are_sourced_and_use_registry_names():
    from mpdsnn.methods import list_methods
    from mpdsnn.models import list_models

    for e in PUBLISHED:
        assert e.method in list_methods()
        assert e.dataset in {"cifar10", "cifar100", "cifar10-dvs", "imagenet"}
        assert e.model in [*list_models(), "plif-net"]
        assert len(e.source) > 40 and e.basis and 0 < e.accuracy < 100
    headline = {(e.dataset, e.model, e.T): (e.accuracy, e.std)
                for e in PUBLISHED if e.method == "ds-atgo"}
    assert headline == {("cifar10", "resnet19", 2): (96.91, 0.12),
                        ("cifar100", "resnet19", 2): (80.59, 0.17),
                        ("cifar10-dvs", "vggsnn", 10): (83.70, 0.41),
                        ("imagenet", "resnet18", 4): (68.86, 0.25)}
    mpd = {e.dataset: (e.accuracy, e.T) for e in PUBLISHED if e.method == "mpd-agl"}
    assert mpd == {"cifar10": (96.18, 2), "cifar100": (78.84, 2), "cifar10-dvs": (82.50, 10)}


# --- statistics -----------------------------------------------------------------------------

@pytest.mark.parametrize("df, expected", [(1, 12.706205), (2, 4.302653), (4, 2.776445),
                                          (9, 2.262157), (29, 2.045230), (200, 1.971896)])
def test_pure_python_t_quantiles_match_tables(df, expected):
    assert t_quantile_pure(0.975, df) == pytest.approx(expected, abs=1e-6)
    assert t_quantile_pure(0.025, df) == pytest.approx(-expected, abs=1e-6)


def test_intervals_and_bootstrap_are_deterministic():
    iv = t_interval([1.0, 2.0, 3.0, float("nan")])
    assert (iv.n, iv.mean, iv.sd) == (3, 2.0, 1.0)
    assert iv.high - iv.mean == pytest.approx(4.302653 / math.sqrt(3), abs=1e-6)
    assert not t_interval([5.0]).defined
    values = [0.3, -0.1, 0.8, 0.5, 0.2]
    assert bootstrap_interval(values) == bootstrap_interval(values)
    low, high = bootstrap_interval(values)
    assert min(values) < low < np.mean(values) < high < max(values)


def test_interval_without_scipy_matches_the_scipy_one(monkeypatch):
    from mpdsnn.verdicts import stats

    values = [1.2, 0.4, 0.9, 1.6]
    with_scipy = stats.t_interval(values)
    monkeypatch.setattr(stats, "_scipy_stats", None)
    without = stats.t_interval(values)
    assert (without.low, without.high) == pytest.approx((with_scipy.low, with_scipy.high),
                                                        abs=1e-9)
