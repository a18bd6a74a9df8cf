"""Verdicts on synthetic runs tables with known truth: directional C5, Holm as statsmodels
computes it, published numbers judged against their std and seed count, recipes that never
pool, power figures, and a comparison table that marks what it cannot rank. A few tests go
through run folders (tests/verdict_runs.py) to keep the folder adapters honest."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from mpdsnn.cli import main as cli_main
from mpdsnn.errors import UserError
from mpdsnn.report.tables import comparison_table, display_table, hardware_warnings
from mpdsnn.verdicts import (
    PUBLISHED,
    PublishedResult,
    batch_statistics_markdown,
    check_claims,
    claims_markdown,
    claims_report,
    compare_published,
    plan_markdown,
    published_markdown,
)
from mpdsnn.verdicts.claims import OVER_MPD_AGL, TARGET_RATE

from mpdsnn.verdicts.stats import (
    ALPHA,
    bootstrap_interval,
    detectable_effect,
    holm,
    p_greater,
    seeds_needed,
    t_interval,
)
from verdict_runs import write_family, write_run


def main(argv: list[str]) -> int:
    """``mpdsnn claims ARGV``."""
    return cli_main(["claims", *argv])

GOOD_ACC = {"vanilla": [93.0, 93.3, 93.1], "at": [93.8, 94.0, 93.9],
            "tgo": [94.3, 94.6, 94.4], "ds-atgo": [95.0, 95.2, 94.9]}


def runs_table(acc: dict[str, list[float]], *, dataset: str = "cifar10", model: str = "resnet19",
               T: int = 2, epochs: int = 3, batch: list[float] | None = None,
               recipe: dict[str, str] | None = None, seeds: list[int] | None = None,
               device: str = "cpu-a") -> pd.DataFrame:
    """A runs table as the run-folder reader gives it: ``acc[method][i]`` is seed i's best and
    last accuracy; ``batch[i]`` ds-atgo's test_acc_batch_thresholds of seed i."""
    rows = []
    for method, values in acc.items():
        for i, a in enumerate(values):
            seed = seeds[i] if seeds else i
            rows.append(dict(
                path=f"/runs/{dataset}/{method}/seed{seed}", run=f"{dataset}/{method}/seed{seed}",
                method=method, variant="", recipe=(recipe or {}).get(method, f"r-{method}"),
                dataset=dataset, model=model, T=T, epochs=epochs, seed=seed, best_test_acc=a,
                last_test_acc=a, val_selected_test_acc=math.nan,
                test_acc_batch_thresholds=(batch[i] if batch and method == "ds-atgo"
                                           else math.nan),
                device_name=device))
    return pd.DataFrame(rows)


def verdicts(runs, *args, **kw):
    return {r.claim: r for r in claims_report(runs, *args, **kw).results}


# --- C5: directional, as the paper states it -------------------------------------------------

@pytest.mark.parametrize("diffs, verdict", [
    ([0.8, 1.0, 0.9], "PASS"),           # the paper's direction: running beats batch
    ([0.0, 0.05, -0.05], "INCONCLUSIVE"),  # equal: not evidence for the claim
    ([-0.8, -1.0, -0.9], "FAIL"),
])
def test_c5_is_directional(diffs, verdict):
    acc = {"ds-atgo": [95.0, 95.2, 94.9], "vanilla": [93.0, 93.1, 93.2]}
    batch = [a - d for a, d in zip(acc["ds-atgo"], diffs)]
    c5 = verdicts(runs_table(acc, batch=batch))["C5"]
    assert c5.verdict == verdict, c5.detail
    assert c5.effect == pytest.approx(np.mean(diffs))
    assert c5.p_value == pytest.approx(
        sps.ttest_1samp(diffs, 0.0, alternative="greater" if verdict != "FAIL" else "less").pvalue)
    if verdict == "INCONCLUSIVE":  # the old equivalence figure survives as secondary detail
        assert "secondary: equivalence TOST" in c5.detail and "within +-1" in c5.detail


def test_c5_reports_the_gain_per_dataset_against_the_papers_order():
    runs = pd.concat([
        runs_table({"ds-atgo": [90.0, 90.2, 89.9]}, batch=[89.0, 89.3, 88.9]),
        runs_table({"ds-atgo": [80.0, 80.4, 80.1]}, dataset="cifar10-dvs", model="vggsnn",
                   T=10, batch=[79.5, 79.8, 79.6])])
    text = claims_markdown(claims_report(runs).results)
    assert "C5 per dataset, running - batch statistics (points): cifar10 +0.97" in text
    assert "cifar10-dvs +0.53" in text and "does not hold in the means" in text


def test_batch_size_companion_table():
    runs = runs_table({"ds-atgo": [95.0, 95.2, 94.9]}, batch=[94.0, 94.2, 94.0])
    assert "test_acc_batch_thresholds_bs1, test_acc_batch_thresholds_bs16" in \
        batch_statistics_markdown(runs)
    runs = runs.assign(test_acc_batch_thresholds_bs1=[60.0, 61.0, 62.0],
                       test_acc_batch_thresholds_bs16=[93.0, 93.0, 93.0])
    text = batch_statistics_markdown(runs)
    assert ("| cifar10 | resnet19 | 2 | 3 | ds-atgo | 3 | 95.03 +- 0.15 | 61.00 +- 1.00 "
            "(running +34.03) | 93.00 +- 0.00 (running +2.03) | 94.07 +- 0.12 (running +0.97) |"
            in text)
    assert "Not recorded" not in text


# --- the other claims, from tables -----------------------------------------------------------

def _probes(runs: pd.DataFrame, rates: dict, grad: dict, layers: int = 6):
    """layers.csv / timesteps.csv rows keyed by run; rates[method][seed] is [layers, T]."""
    lrows, trows = [], []
    for _, r in runs.iterrows():
        if r["method"] not in rates:
            continue
        rate = np.asarray(rates[r["method"]][r["seed"]])
        for layer in range(layers):
            lrows.append(dict(run=r["run"], epoch=3, layer=layer, firing_rate=rate[layer].mean(),
                              grad_available=grad[r["method"]][r["seed"]]))
            for t in range(rate.shape[1]):
                trows.append(dict(run=r["run"], epoch=3, layer=layer, t=t + 1,
                                  firing_rate=rate[layer, t]))
                trows.append(dict(run=r["run"], epoch=1, layer=layer, t=t + 1, firing_rate=0.5))
    return pd.DataFrame(lrows), pd.DataFrame(trows)


def test_every_claim_passes_on_a_table_built_to_pass():
    runs = runs_table(GOOD_ACC, batch=[94.0, 94.3, 93.8]).drop(columns="path")
    rng = np.random.default_rng(0)
    rates = {"ds-atgo": [0.1587 + rng.normal(0, 0.002, (6, 2)) for _ in range(3)],
             "vanilla": [0.10 + np.array([-0.05, 0.05]) + rng.normal(0, 0.002, (6, 2))
                         for _ in range(3)]}
    grad = {"ds-atgo": [0.40, 0.41, 0.405], "vanilla": [0.12, 0.13, 0.11]}
    results = verdicts(runs, *_probes(runs, rates, grad))
    assert {c: r.verdict for c, r in results.items()} == dict.fromkeys(
        ["C1", "C2", "C3", "C4", "C5"], "PASS")
    assert {r.adjusted_verdict for r in results.values()} == {"PASS"}
    c3 = results["C3"]
    diffs = np.array(GOOD_ACC["ds-atgo"]) - np.array(GOOD_ACC["vanilla"])
    half = 4.302652729749 * diffs.std(ddof=1) / math.sqrt(3)
    assert (c3.ci_low, c3.ci_high) == pytest.approx((diffs.mean() - half, diffs.mean() + half))
    assert "bootstrap n/a" in c3.detail and "+1.71, inside" in c3.detail
    assert results["C2"].effect == pytest.approx(100 * (0.405 - 0.12))
    assert "t=1: 15." in results["C1"].detail  # the epoch-1 probe (50 %) is ignored


@pytest.mark.parametrize("claim, acc, reason", [
    ("C3", {**GOOD_ACC, "ds-atgo": [92.0, 92.1, 92.2]}, "opposite direction"),
    ("C4", {**GOOD_ACC, "tgo": [93.0, 93.3, 93.05]}, "at < tgo: FAIL"),
])
def test_claims_fail_on_tables_built_to_fail(claim, acc, reason):
    result = verdicts(runs_table(acc))[claim]
    assert result.verdict == "FAIL" and reason in result.detail


def test_two_seeds_are_never_a_verdict_and_missing_inputs_are_inconclusive():
    acc = {m: v[:2] for m, v in GOOD_ACC.items()}
    acc["ds-atgo"] = [99.0, 99.1]
    results = verdicts(runs_table(acc, batch=[90.0, 90.0]))
    assert {r.verdict for r in results.values()} == {"INCONCLUSIVE"}
    assert "only 2 seed pair(s), need >= 3" in results["C3"].detail
    assert results["C3"].p_value is None  # untested: outside the Holm family
    assert results["C1"].detail == "no timestep probes in the ds-atgo runs"
    assert results["C5"].n == 2


# --- multiplicity ----------------------------------------------------------------------------

def test_holm_adjusts_as_statsmodels_says_and_downgrades_marginal_verdicts():
    # three settings whose C3 effects range from overwhelming to marginal
    parts = []
    for name, atgo in (("a", [95.0, 95.2, 94.9]), ("b", [93.5, 94.2, 93.8]),
                       ("c", [93.5, 94.3, 93.7])):
        parts.append(runs_table({"ds-atgo": atgo, "vanilla": [93.0, 93.3, 93.1]}, dataset=name))
    results = claims_report(pd.concat(parts)).results
    tested = [r for r in results if r.p_value is not None]
    expected = multipletests([r.p_value for r in tested], method="holm")[1]
    assert [r.adjusted_p for r in tested] == pytest.approx(expected)
    c3 = {r.dataset: r for r in results if r.claim == "C3"}
    assert c3["c"].verdict == "PASS" and c3["c"].p_value < ALPHA
    assert c3["c"].adjusted_p > ALPHA and c3["c"].adjusted_verdict == "INCONCLUSIVE"
    assert c3["b"].adjusted_p == pytest.approx(2 * c3["b"].p_value)  # Holm's second step
    assert c3["a"].adjusted_verdict == "PASS"
    text = claims_markdown(results)
    assert "| Holm p | Holm verdict |" in text and "Holm's rule over the" in text
    assert holm([0.01, math.nan, 0.04]) == pytest.approx([0.02, math.nan, 0.04], nan_ok=True)


def test_bootstrap_only_where_n_makes_it_meaningful():
    assert bootstrap_interval([1.0, 2.0, 3.0]).startswith("n/a: a percentile bootstrap")
    values = list(np.linspace(0.0, 1.1, 12))
    low, high = bootstrap_interval(values)
    assert bootstrap_interval(values) == (low, high)  # seeded
    assert min(values) < low < np.mean(values) < high < max(values)


# --- power -----------------------------------------------------------------------------------

def test_each_claim_states_its_detectable_effect_and_the_seeds_it_needs():
    acc = {"ds-atgo": [95.0, 94.0, 95.5], "vanilla": [93.5, 93.4, 93.0]}
    c3 = verdicts(runs_table(acc))["C3"]
    sd = (np.array(acc["ds-atgo"]) - np.array(acc["vanilla"])).std(ddof=1)
    d = TTestPower().solve_power(nobs=3, alpha=ALPHA, power=0.8, alternative="larger")
    assert c3.detectable == pytest.approx(d * sd)
    assert c3.target == 1.71 and c3.seeds_needed == seeds_needed(1.71, sd)
    n = c3.seeds_needed
    assert TTestPower().power(1.71 / sd, n, ALPHA, alternative="larger") >= 0.8
    assert TTestPower().power(1.71 / sd, n - 1, ALPHA, alternative="larger") < 0.8
    other = verdicts(runs_table(acc, dataset="digits"))["C3"]
    assert other.target == OVER_MPD_AGL == 0.73 and "over MPD-AGL" in other.target_source
    assert math.isnan(detectable_effect(1.0, 1)) and seeds_needed(1.0, math.nan) is None
    assert seeds_needed(1.0, 0.0) is None  # equal differences measure no spread


def test_plan_prints_the_params_change_that_adds_the_seeds():
    acc = {"ds-atgo": [95.0, 94.0, 95.5], "vanilla": [93.5, 93.4, 93.0]}
    results = claims_report(runs_table(acc, dataset="digits")).results
    c3 = next(r for r in results if r.claim == "C3")
    text = plan_markdown(results, [0, 1, 2])
    new = "[" + ", ".join(map(str, range(c3.seeds_needed))) + "]"
    assert f"dvc exp run -S 'seeds={new}'" in text and f"`seeds: {new}`" in text
    assert "| digits / resnet19 / T=2 / 3 epochs | C3 | +0.73 |" in text


# --- pooling by recipe -----------------------------------------------------------------------

def test_two_recipes_never_pool_and_each_run_is_named():
    runs = pd.concat([
        runs_table({"ds-atgo": [95.0, 95.2, 94.9], "vanilla": [93.0, 93.3, 93.1]}),
        runs_table({"ds-atgo": [80.0, 80.1, 80.2]}, recipe={"ds-atgo": "r-width32"},
                   seeds=[3, 4, 5]),
        runs_table({"vanilla": [79.0, 79.1, 79.2]}, seeds=[3, 4, 5])])
    report = claims_report(runs)
    c3 = [r for r in report.results if r.claim == "C3"]
    assert sorted(r.group for r in c3) == [
        "cifar10 / resnet19 / T=2 / 3 epochs [ds-atgo recipe r-ds-atg]",
        "cifar10 / resnet19 / T=2 / 3 epochs [ds-atgo recipe r-width3]"]
    assert [r.n for r in c3] == [3, 3]  # seeds 0-2 pair with one recipe, 3-5 with the other
    assert report.notes[0] == ("ds-atgo in cifar10 / resnet19 / T=2 / 3 epochs has 2 recipes, "
                               "never pooled:")
    assert "recipe r-width3: cifar10/ds-atgo/seed3, cifar10/ds-atgo/seed4, " \
           "cifar10/ds-atgo/seed5" in report.notes[2]
    table = compare_published(runs, [PUBLISHED[0]])
    assert table["recipe"].tolist() == ["r-ds-atgo", "r-width32"]
    assert table["n"].tolist() == [3, 3]


def test_variants_are_left_out_by_name_and_duplicate_seeds_refused():
    runs = runs_table(GOOD_ACC)
    variant = runs_table({"ds-atgo": [10.0]}, seeds=[7]).assign(variant="tgo_rule=code")
    report = claims_report(pd.concat([runs, variant]))
    assert report.notes == ["left out (non-default method options tgo_rule=code): "
                            "cifar10/ds-atgo/seed7"]
    twice = pd.concat([runs, runs_table({"ds-atgo": [94.0]})])
    with pytest.raises(UserError, match="2 runs of ds-atgo on cifar10 with seed 0 and the same "
                                        "recipe"):
        claims_report(twice)


# --- published numbers -----------------------------------------------------------------------

def _entry(std, n_seeds, accuracy=96.91):
    return PublishedResult("ds-atgo", "cifar10", "resnet19", 2, accuracy, std, n_seeds,
                           "test source", "best-test", "test basis")


def _published(values, entry):
    return compare_published(runs_table({"ds-atgo": values}), [entry]).iloc[0]


def test_published_row_is_judged_against_its_std_and_seed_count():
    values = [96.40, 96.45, 96.50]
    row = _published(values, _entry(0.12, 3))
    assert row["verdict"] == "below" and row["test"] == "Welch (published std 0.12 over 3 seeds)"
    welch = sps.ttest_ind_from_stats(np.mean(values), np.std(values, ddof=1), 3, 96.91, 0.12, 3,
                                     equal_var=False)
    assert row["p_value"] == pytest.approx(welch.pvalue)
    # the same reproduction against a published number that spreads far more: no verdict
    loose = _published(values, _entry(2.0, 3))
    assert loose["verdict"] == "cannot tell" and "detects only differences >=" in loose["reason"]
    close = _published([96.85, 96.90, 96.95], _entry(0.12, 3))
    assert close["verdict"] == "consistent" and "within +-0.5" in close["reason"]
    above = _published([97.60, 97.65, 97.70], _entry(0.12, 3))
    assert above["verdict"] == "above"


def test_unknown_published_std_and_seed_count_are_said_and_handled():
    values = [96.40, 96.50, 96.60]
    unknown_n = _published(values, _entry(0.12, None))
    assert "seed count unknown: taken as 2" in unknown_n["test"]
    exact = _published(values, _entry(None, None))
    assert exact["test"].startswith("one-sample t (published std unknown")
    assert exact["p_value"] == pytest.approx(sps.ttest_1samp(values, 96.91).pvalue)
    one = _published([96.9], _entry(0.12, 3))
    assert one["verdict"] == "cannot tell" and "1 reproduced seed" in one["reason"]
    table = compare_published(runs_table({"ds-atgo": values}))
    assert (table["verdict"] == "not run").sum() == len(PUBLISHED) - 1
    text = published_markdown(table)
    assert "| ds-atgo | cifar10 | resnet19 | 2 | 96.91 +- 0.12 | unknown | best-test |" in text
    assert "arXiv 2511.13050" in text and "**not run**" not in text  # one line, not 19 rows
    assert f"{len(PUBLISHED) - 1} published entries have no run here (" in text
    nothing = published_markdown(compare_published(runs_table({"ds-atgo": values}, dataset="digits")))
    assert "No published result matches these runs' dataset, model and T" in nothing


def test_selection_rule_picks_the_compared_accuracy():
    runs = runs_table({"ds-atgo": [97.0, 97.1, 97.2]}).assign(
        last_test_acc=[96.0, 96.1, 96.2])
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
    with pytest.raises(UserError, match="lacks column"):
        compare_published(runs.drop(columns="best_test_acc"))


def test_registry_entries_are_sourced_and_use_registry_names():
    from mpdsnn.methods import list_methods
    from mpdsnn.models import list_models

    for e in PUBLISHED:
        assert e.method in list_methods()
        assert e.model in [*list_models(), "plif-net"]
        assert len(e.source) > 40 and e.basis and 0 < e.accuracy < 100
        assert e.n_seeds is None  # SPEC.md gives no seed count for any entry
    headline = {(e.dataset, e.model, e.T): (e.accuracy, e.std)
                for e in PUBLISHED if e.method == "ds-atgo"}
    assert headline == {("cifar10", "resnet19", 2): (96.91, 0.12),
                        ("cifar100", "resnet19", 2): (80.59, 0.17),
                        ("cifar10-dvs", "vggsnn", 10): (83.70, 0.41),
                        ("imagenet", "resnet18", 4): (68.86, 0.25)}


# --- the comparison table --------------------------------------------------------------------

def test_comparison_table_marks_methods_indistinguishable_from_the_best():
    acc = {"ds-atgo": [95.0, 95.4, 94.8, 95.1], "at": [95.3, 94.5, 95.2, 94.6],
           "vanilla": [90.0, 90.3, 89.8, 90.2]}
    runs = runs_table(acc).assign(pipeline="p")
    runs.loc[runs["method"] == "vanilla", "device_name"] = ["cpu-a", "cpu-b", "cpu-a", "cpu-a"]
    table = comparison_table(runs).set_index("method")
    assert table.loc["ds-atgo", "vs_best"] == "best"
    raw = [sps.ttest_rel(acc["ds-atgo"], acc[m]).pvalue for m in ("at", "vanilla")]
    assert table.loc[["at", "vanilla"], "p_vs_best"].tolist() == pytest.approx(
        multipletests(raw, method="holm")[1])
    assert table.loc["at", "vs_best"] == "~ best"
    assert table.loc["vanilla", "vs_best"] == "below best"
    assert table.loc["vanilla", "hardware"] == "cpu-a (3), cpu-b (1)"
    shown = display_table(table.reset_index())
    assert shown["hardware"].tolist()[-1] == "MIXED: cpu-a (3), cpu-b (1)"
    assert shown["vs best (paired, Holm)"].tolist()[1].startswith("~ best (p=")
    assert hardware_warnings(table.reset_index()) == [
        "p / cifar10 / resnet19 / 2 / vanilla: runs on several hardware models "
        "(cpu-a (3), cpu-b (1)); seeds reproduce only on one"]


def test_equal_differences_use_a_sign_test_not_a_zero_p():
    # accuracies on a small test set are discrete: two pairs both 1.0 apart prove nothing
    runs = runs_table({"vanilla": [97.0, 98.0], "ds-atgo": [96.0, 97.0]}).assign(pipeline="")
    table = comparison_table(runs).set_index("method")
    assert table.loc["ds-atgo", "vs_best"] == "~ best"
    assert table.loc["ds-atgo", "p_vs_best"] == pytest.approx(0.5)
    assert p_greater([1.0, 1.0, 1.0]) == pytest.approx(0.125)


# --- run folders: the adapters and the command -----------------------------------------------

def _rates(level, seeds=3, layers=6, T=2, spread=0.0, noise=0.002, seed=0):
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-spread / 2, spread / 2, T)
    return [level + ramp + rng.normal(0, noise, (layers, T)) for _ in range(seeds)]


@pytest.fixture(scope="module")
def passing(tmp_path_factory):
    root = tmp_path_factory.mktemp("pass")
    write_family(root, GOOD_ACC,
                 rates={"ds-atgo": _rates(0.1587), "vanilla": _rates(0.10, spread=0.10)},
                 grad={"ds-atgo": [np.full(6, v) for v in (0.40, 0.41, 0.405)],
                       "vanilla": [np.full(6, v) for v in (0.12, 0.13, 0.11)]},
                 batch=[94.0, 94.3, 93.8])
    return root


def test_run_folders_give_the_same_verdicts_as_tables(passing):
    results = {r.claim: r for r in check_claims([passing])}
    assert {c: r.verdict for c, r in results.items()} == dict.fromkeys(
        ["C1", "C2", "C3", "C4", "C5"], "PASS")
    assert results["C1"].group == "cifar10 / resnet19 / T=2 / 3 epochs"
    with pytest.raises(UserError, match="unknown accuracy 'top5'"):
        check_claims([passing], accuracy="top5")


def test_cli_prints_tables_plan_writes_json_and_exits_zero(passing, tmp_path, capsys):
    out = tmp_path / "claims.json"
    assert main([str(passing), "--plan", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## Claims checked on these runs" in printed
    assert "## Seeds needed for the paper's effects" in printed
    assert "## Running thresholds vs batch statistics" in printed
    assert "## Published vs reproduced" in printed and "cifar100" not in printed
    data = json.loads(out.read_text())
    assert [c["adjusted_verdict"] for c in data["claims"]] == ["PASS"] * 5
    ds = next(p for p in data["published"] if p["method"] == "ds-atgo")
    assert ds["n"] == 3 and ds["verdict"] == "below"


def test_cli_errors_exit_two(tmp_path, passing, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no run folders" in capsys.readouterr().err
    assert main([str(passing), "--dataset", "cifar100"]) == 2
    assert "no runs of dataset 'cifar100'; datasets in these runs: cifar10" in \
        capsys.readouterr().err


def test_cli_with_runs_of_other_methods_only(tmp_path, capsys):
    write_run(tmp_path, method="tet", seed=0, best=94.0)
    assert main([str(tmp_path)]) == 0
    assert "no claim to check" in capsys.readouterr().out


def test_interval_of_identical_values_is_the_point():
    iv = t_interval([2.0, 2.0, 2.0, float("nan")])
    assert (iv.n, iv.mean, iv.low, iv.high) == (3, 2.0, 2.0, 2.0)
    assert TARGET_RATE == pytest.approx(15.8655, abs=1e-4)


def test_probes_use_the_papers_layer_set_without_downsample_neurons():
    acc = {"ds-atgo": [95.0, 95.2, 94.9], "vanilla": [93.0, 93.3, 93.1]}
    runs = runs_table(acc)
    layers = []
    for _, r in runs.iterrows():
        grad = 0.4 if r["method"] == "ds-atgo" else 0.1
        for i, name in enumerate(["stem.lif", "block1.lif", "block2.lif",
                                  "block2.downsample.lif", "block3.lif"]):
            # a downsample neuron that would flip C2 if it were averaged in
            value = 0.0 if (name.endswith("downsample.lif") and r["method"] == "ds-atgo") \
                else 0.9 if "downsample" in name else grad
            layers.append(dict(path=r["path"], epoch=3, layer=i, layer_name=name,
                               grad_available=value + (0.01 * r["seed"] if grad == 0.4 else 0)))
    c2 = verdicts(runs, pd.DataFrame(layers))["C2"]
    assert c2.verdict == "PASS" and c2.effect == pytest.approx(31.0)  # 30, 31, 32 by seed
    assert "deepest 2 of 4 spiking layers" in c2.detail


def test_table_keeps_recipes_apart_in_rows_and_summary_keys():
    from mpdsnn.report.tables import summary

    runs = pd.concat([runs_table({"ds-atgo": [95.0, 95.2, 94.9]}),
                      runs_table({"ds-atgo": [80.0, 80.1]}, recipe={"ds-atgo": "r-width32"},
                                 seeds=[3, 4])]).assign(pipeline="")
    table = comparison_table(runs)
    assert table["n"].tolist() == [3, 2]
    assert display_table(table)["recipe"].tolist() == ["r-ds-atg", "r-width3"]
    flat = summary(table)
    assert flat["cifar10/ds-atgo/r-width3/n"] == 2 and flat["cifar10/ds-atgo/r-ds-atg/n"] == 3
