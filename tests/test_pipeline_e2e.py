"""The whole suite end to end: a tiny copy of the default pipeline through the real `dvc repro`
in a temporary git repository, its MLflow store, its report, and a person's view in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pipeline_copy import copy_default_pipeline, write_params
from subprocess_env import subprocess_env

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
METHODS = ["ds-atgo", "vanilla"]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("pipeline")
    params = copy_default_pipeline(root, METHODS)
    params["train"].update(probe_every=1, probe_samples=32, train_subset=128, test_subset=64)
    params["datasets"]["digits"].update(epochs=2)
    write_params(root, params)
    _run(["git", "init", "-q"], root)
    _run(["dvc", "init", "-q"], root)
    _run(["dvc", "config", "core.analytics", "false"], root)
    _run([sys.executable, "-m", "mpdsnn.report", "dvc-templates", ".dvc/plots"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "tiny pipeline"], root)
    first = _run(["dvc", "repro"], root)
    second = _run(["dvc", "repro"], root)
    return {"root": root, "first": first.stdout, "second": second.stdout}


def test_every_stage_ran_and_wrote_its_run_folder(pipeline):
    out = pipeline["first"]
    for stage in ("prepare@digits", *[f"train@digits-{m}-0" for m in METHODS], "report"):
        assert f"Running stage '{stage}'" in out
    for method in METHODS:
        metrics = json.loads((pipeline["root"] / f"runs/default/digits/{method}/seed0/metrics.json").read_text())
        assert metrics["status"] == "finished" and metrics["method"] == method and metrics["epochs"] == 2


def test_a_second_repro_has_nothing_to_do(pipeline):
    assert "Running stage" not in pipeline["second"]
    assert "up to date" in pipeline["second"]


def test_mlflow_store_holds_the_runs_with_metrics_and_tags(pipeline):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline['root'] / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mpdsnn-default")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["method"] for r in runs) == sorted(METHODS)
    for run in runs:
        tags = run.data.tags
        assert tags["dvc_stage"] == f"train@digits-{tags['method']}-0"
        assert tags["dataset"] == "digits" and tags["seed"] == "0" and tags["data_fingerprint"]
        assert len(tags["git_commit"]) == 40
        history = client.get_metric_history(run.info.run_id, "test/acc")
        assert [m.step for m in history] == [1, 2]
        folder = pipeline["root"] / f"runs/default/digits/{tags['method']}/seed0"
        assert history[-1].value == pytest.approx(pd.read_csv(folder / "history.csv")["test_acc"].iloc[-1])
        layers = pd.read_csv(folder / "probes" / "layers.csv")
        for name in set(layers["layer_name"]):  # by module name, in percent, every probed epoch
            probe = client.get_metric_history(run.info.run_id, f"probe/firing_rate/{name}")
            assert [m.step for m in probe] == [1, 2] and all(0 <= m.value <= 100 for m in probe)
        assert {"energy_uj_per_sample", "sops_per_sample", "mean_firing_rate",
                "activation_sparsity", "footprint_bytes"} <= set(run.data.metrics)
        assert run.data.params["method"] == tags["method"]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.json", "history.csv", "probes", "model.pt"} <= artifacts


def test_report_tables_have_one_row_per_method(pipeline):
    reports = pipeline["root"] / "reports"
    table = pd.read_csv(next((reports / "tables").glob("*.csv")))
    assert sorted(table["method"]) == sorted(METHODS)
    assert set(table["n"]) == {1}
    md = (reports / "README.md").read_text()
    assert "Published vs reproduced" in md and "claims" in md.lower()
    summary = json.loads((reports / "summary.json").read_text())
    runs = {m: json.loads((pipeline["root"] / f"runs/default/digits/{m}/seed0/metrics.json").read_text())
            for m in METHODS}
    for m in METHODS:
        assert summary[f"digits/{m}/best_test_acc_mean"] == pytest.approx(runs[m]["best_test_acc"])


def test_figures_are_images_drawn_from_the_run_data(pipeline):
    figures = pipeline["root"] / "reports" / "figures"
    pngs = sorted(figures.glob("*.png"))
    assert {p.stem.split("-")[0] for p in pngs} >= {"fig5_window_fractions", "fig6_ablation_curves",
                                                    "fig8_firing_rate_per_layer", "fig11_grad_available_per_layer",
                                                    "fig2_mpd_histograms", "fig10_firing_rate_per_timestep"}
    for png in pngs:
        with Image.open(png) as im:
            assert im.size[0] > 200 and im.size[1] > 150
    fig8 = pd.read_csv(next(figures.glob("fig8_firing_rate_per_layer*.csv")))
    for method in METHODS:
        layers = pd.read_csv(pipeline["root"] / f"runs/default/digits/{method}/seed0/probes/layers.csv")
        last = layers[layers["epoch"] == layers["epoch"].max()].sort_values("layer")
        plotted = fig8[(fig8["method"] == method) & (fig8["quantity"] == "firing_rate_pct")].sort_values("layer")
        np.testing.assert_allclose(plotted["mean"].to_numpy() / 100, last["firing_rate"].to_numpy(), rtol=1e-6)


# ----- what a person sees, in a real browser ------------------------------------------------------

def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def browser():
    executable = _chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def test_report_page_shows_methods_and_loads_every_figure(pipeline, browser):
    page = browser.new_page()
    page.goto((pipeline["root"] / "reports" / "index.html").as_uri())
    page.wait_for_load_state("load")
    text = page.inner_text("body")
    for method in METHODS:
        assert method in text
    images = page.evaluate("Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])")
    assert len(images) >= 6
    assert all(ok for _, ok in images), [src for src, ok in images if not ok]
    page.screenshot(path=str(pipeline["root"] / "reports-screenshot.png"), full_page=True)


def _machine_learning_view(page) -> str:
    """The page's text, after checking it shows MLflow's model-training view: the GenAI view's
    navigation, its overview and the assistant panel that opens itself are absent."""
    body = page.inner_text("body")
    for genai in ("Detect Issues", "Observability", "Judges", "Training runs", "Usage",
                  "Ask questions about your experiments"):
        assert genai not in body, genai
    assert page.evaluate("localStorage.getItem('mlflow.workflowType_v1')") == '"machine_learning"'
    return body


def test_mlflow_ui_opens_on_the_runs_table_with_probes_by_layer_name(pipeline, browser):
    """`mpdsnn ui` as a person starts it: the bare address, opened in a fresh browser profile,
    lands on the newest experiment's runs table in the model-training view (not MLflow 3.17's
    GenAI view), each run folder once; a run opened from the table stays in that view (its URL
    has no workflowType) and its probe charts name layers; the printed address works too."""
    import re

    port = _free_port()
    log = pipeline["root"] / "mpdsnn-ui.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "mpdsnn.cli", "ui", "--port", str(port)],
                                  cwd=pipeline["root"], env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()  # fresh profile
        deadline = time.time() + 90
        url = None
        while time.time() < deadline and url is None:
            found = re.search(r"MLflow UI for \S+ at (\S+)", log.read_text())
            url = found and found.group(1)
            time.sleep(0.5)
        assert url and url.endswith("/runs?workflowType=machine_learning"), log.read_text()
        while time.time() < deadline:
            try:
                page.goto(f"http://127.0.0.1:{port}/", timeout=5000)
                break
            except Exception:
                time.sleep(1)
        for method in METHODS:
            page.get_by_role("link", name=f"digits/{method}/seed0").wait_for(timeout=60000)
        assert page.url.split("?")[0] == url.split("?")[0]  # the bare address went to the runs table
        body = _machine_learning_view(page)
        assert "Run Name" in body and f"{len(METHODS)} matching runs" in body
        for method in METHODS:
            assert body.count(f"digits/{method}/seed0") == 1
        page.screenshot(path=str(pipeline["root"] / "mlflow-screenshot.png"))

        page.get_by_role("link", name="digits/ds-atgo/seed0").click()
        page.get_by_text("Model metrics").first.wait_for(timeout=60000)
        assert "/runs/" in page.url and "workflowType" not in page.url
        _machine_learning_view(page)
        page.screenshot(path=str(pipeline["root"] / "mlflow-run-screenshot.png"))
        page.get_by_text("Model metrics").first.click(timeout=60000)
        page.get_by_placeholder("Search metric charts").fill("probe/firing_rate")
        layers = pd.read_csv(pipeline["root"] / "runs/default/digits/ds-atgo/seed0/probes/layers.csv")
        for name in sorted(set(layers["layer_name"])):
            page.get_by_text(f"(probe/firing_rate/{name})").first.wait_for(timeout=60000)
        assert "probe/firing_rate/layer00" not in page.inner_text("body")
        page.screenshot(path=str(pipeline["root"] / "mlflow-probes-screenshot.png"))

        page.goto(url)  # the printed address
        page.get_by_role("link", name="digits/vanilla/seed0").wait_for(timeout=60000)
        assert f"{len(METHODS)} matching runs" in _machine_learning_view(page)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
