"""MLflow tracking: a real SQLite store, a real `mlflow server` read back over plain HTTP, two
processes sharing one store, an unreachable server, and URI resolution for DVC experiment copies."""

from __future__ import annotations

import importlib.util
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from mpdsnn import tracking, tracking_ui
from mpdsnn.errors import UserError
from mpdsnn.tracking import find_project_root, open_tracker, resolve_tracking_uri
from mpdsnn.tracking_ui import open_ui

TAGS = {"method": "ds-atgo", "dataset": "digits", "seed": "0", "git_commit": "abc123",
        "dvc_stage": "train@digits-ds_atgo-0", "data_fingerprint": "sha256:feed"}
HTTP_ENV = ("MLFLOW_TRACKING_URI", *tracking._HTTP_DEFAULTS)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No tracking env leaks in or out (open_tracker sets the HTTP timeout defaults)."""
    for name in HTTP_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty store: creating MLflow's schema costs seconds, so tests copy it."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def store_uri(template_db: Path, tmp_path: Path) -> str:
    """A SQLite store of this test's own at tmp_path/store/mlflow.db."""
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(template_db, db)
    return f"sqlite:///{db}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_folder(root: Path) -> Path:
    folder = root / "run"
    (folder / "probes").mkdir(parents=True)
    (folder / "config.yaml").write_text("method: ds-atgo\nT: 4\n")
    (folder / "probes" / "layers.csv").write_text("epoch,layer,firing_rate\n1,0,0.12\n")
    return folder


def log_a_run(uri: str, tmp_path: Path, name: str = "ds-atgo-digits-seed0") -> tuple[str, torch.nn.Module]:
    model = torch.nn.Linear(3, 2)
    tracker = open_tracker(name, "mpdsnn-test", TAGS, uri=uri)
    assert tracker.active, "the store was reachable: the tracker must be live"
    tracker.log_params({"method": "ds-atgo", "T": 4, "method_options": {"k": 1.5, "width": {"a": 2}},
                        "milestones": [10, 20]})
    for epoch in (1, 2, 3):
        tracker.log_metrics({"train_loss": 1.0 / epoch, "test_acc": 50.0 + 10 * epoch}, step=epoch)
    tracker.log_artifacts(run_folder(tmp_path))
    tracker.log_model(model)
    tracker.finish()
    assert not tracker.active
    return tracker.run_id, model


def test_sqlite_store_roundtrip(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # nothing may land in the cwd: no ./mlruns, no mlflow.db
    uri = store_uri
    run_id, model = log_a_run(uri, tmp_path)

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"method": "ds-atgo", "T": "4", "method_options.k": "1.5",
                               "method_options.width.a": "2", "milestones": "[10, 20]"}
    assert {k: run.data.tags[k] for k in TAGS} == TAGS
    assert run.data.tags["mlflow.runName"] == "ds-atgo-digits-seed0"
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "test_acc"))
    assert history == [(1, 60.0), (2, 70.0), (3, 80.0)]

    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location == (tmp_path / "store" / "mlartifacts" / "mpdsnn-test").as_uri()
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["config.yaml", "model", "probes"]
    assert [a.path for a in client.list_artifacts(run_id, "probes")] == ["probes/layers.csv"]
    weights = Path(client.download_artifacts(run_id, "model/state_dict.pt", str(tmp_path)))
    state = torch.load(weights)
    assert torch.equal(state["weight"], model.weight.detach())
    assert list(work.iterdir()) == []

    # Same experiment name again: reused, not duplicated.
    again = open_tracker("second", "mpdsnn-test", {}, uri=uri)
    assert client.get_run(again.run_id).info.experiment_id == run.info.experiment_id
    again.finish("FAILED")
    assert client.get_run(again.run_id).info.status == "FAILED"


def test_disabled_tracker_is_a_noop(tmp_path: Path) -> None:
    uri = "sqlite:///" + (tmp_path / "mlflow.db").as_posix()
    tracker = open_tracker("rank1", "mpdsnn-test", TAGS, enabled=False, uri=uri)
    assert not tracker.active and tracker.run_id is None
    tracker.log_params({"a": 1})
    tracker.log_metrics({"x": 1.0}, step=1)
    tracker.log_artifacts(tmp_path)
    tracker.log_model(torch.nn.Linear(1, 1))
    tracker.finish()
    assert list(tmp_path.iterdir()) == []  # no store was created


def test_context_manager_marks_a_crashed_run_failed(store_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    uri = store_uri
    with pytest.raises(RuntimeError, match="diverged"):
        with open_tracker("crash", "mpdsnn-test", {}, uri=uri) as tracker:
            raise RuntimeError("loss diverged")
    assert MlflowClient(uri).get_run(tracker.run_id).info.status == "FAILED"
    with pytest.raises(ValueError, match="valid: FINISHED, FAILED, KILLED"):
        tracker.finish("DONE")


def test_experiment_created_by_another_process_in_between(store_uri: str) -> None:
    """The get-or-create race: our lookup saw nothing, then someone else created it."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store_uri)

    class LateClient:
        def __init__(self) -> None:
            self.lookups = 0

        def get_experiment_by_name(self, name: str):
            self.lookups += 1
            return None if self.lookups == 1 else client.get_experiment_by_name(name)

        def __getattr__(self, attr: str):
            return getattr(client, attr)

    existing = client.create_experiment("shared")
    assert tracking._experiment_id(LateClient(), "shared", None) == existing


def _concurrent_worker(uri: str, name: str, barrier, results) -> None:
    from mpdsnn.tracking import open_tracker  # imports mlflow before the barrier

    import mlflow.tracking  # noqa: F401

    barrier.wait(timeout=60)
    tracker = open_tracker(name, "mpdsnn-test", {"seed": name}, uri=uri)
    for step in range(1, 41):
        tracker.log_metrics({"loss": 1.0 / step, "acc": float(step)}, step=step)
    tracker.log_params({"name": name})
    active = tracker.active
    tracker.finish()
    results.put((name, tracker.run_id, active))


def test_two_processes_share_a_fresh_sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both start at once on a store that does not exist yet: without the store lock one of
    them fails in MLflow's schema migration; afterwards SQLite must not report 'locked'."""
    from mlflow.tracking import MlflowClient

    uri = "sqlite:///" + (tmp_path / "store" / "mlflow.db").as_posix()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # the children start here: creating the store leaves nothing in it
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_concurrent_worker, args=(uri, f"p{i}", barrier, results))
             for i in range(2)]
    for proc in procs:
        proc.start()
    try:
        outcomes = sorted(results.get(timeout=90) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert [(name, active) for name, _, active in outcomes] == [("p0", True), ("p1", True)]

    client = MlflowClient(uri)
    for name, run_id, _ in outcomes:
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.data.params == {"name": name}
        assert len(client.get_metric_history(run_id, "loss")) == 40
    experiment = client.get_experiment_by_name("mpdsnn-test")
    assert len(client.search_runs([experiment.experiment_id])) == 2
    assert list(work.iterdir()) == []


def test_unreachable_server_warns_once_and_returns_fast(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # bound and released: nothing listens there
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        tracker = open_tracker("offline", "mpdsnn-test", TAGS, uri=uri)
        tracker.log_params({"a": {"b": 1}})
        tracker.log_metrics({"x": 1.0}, step=1)
        tracker.log_artifacts(run_folder(tmp_path))
        tracker.log_model(torch.nn.Linear(2, 2))
        tracker.finish()
    elapsed = time.monotonic() - started
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "MLflow tracking off" in warnings[0].getMessage() and uri in warnings[0].getMessage()
    assert not tracker.active
    assert elapsed < 20, f"an unreachable server cost {elapsed:.1f} s"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def mlflow_server(template_db: Path, tmp_path: Path):
    """A real `mlflow server` on a free 127.0.0.1 port with a SQLite store in tmp_path."""
    if importlib.util.find_spec("mlflow.cli") is None:
        pytest.skip("the mlflow CLI is not installed (pip install mlflow)")
    port = free_port()
    db = tmp_path / "server" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(template_db, db)
    log = (tmp_path / "server" / "server.log").open("w")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
         "--artifacts-destination", str(tmp_path / "server" / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited:\n" + (tmp_path / "server" / "server.log").read_text())
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not answer /health within 45 s")
            time.sleep(0.3)
        yield url, proc, db
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.mark.slow
def test_real_server_roundtrip_over_rest(mlflow_server, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    url, proc, db = mlflow_server
    run_id, _ = log_a_run(url, tmp_path)

    run = _get_json(f"{url}/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["method_options.width.a"] == "2" and params["T"] == "4"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert {k: tags[k] for k in TAGS} == TAGS and tags["mlflow.runName"] == "ds-atgo-digits-seed0"
    history = _get_json(f"{url}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=test_acc")
    assert sorted((m["step"], m["value"]) for m in history["metrics"]) == [(1, 60.0), (2, 70.0), (3, 80.0)]
    listed = _get_json(f"{url}/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=model")
    assert [f["path"] for f in listed["files"]] == ["model/state_dict.pt"]
    stored = list((tmp_path / "server" / "artifacts").rglob("state_dict.pt"))
    assert len(stored) == 1 and run_id in stored[0].parts

    # A run logged straight into the server's SQLite file (what `mpdsnn ui` serves) has its
    # artifacts next to the database, and the server lists them.
    direct = open_tracker("direct", "mpdsnn-direct", {}, uri=f"sqlite:///{db}")
    direct.log_artifacts(run_folder(tmp_path / "direct"))
    direct.finish()
    listed = _get_json(f"{url}/api/2.0/mlflow/artifacts/list?run_id={direct.run_id}")
    assert sorted(f["path"] for f in listed["files"]) == ["config.yaml", "probes"]

    # The server dies mid-training: one warning, then silence; training goes on.
    live = open_tracker("dies", "mpdsnn-test", {}, uri=url)
    assert live.active
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=15)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        for epoch in (1, 2, 3):
            live.log_metrics({"test_acc": 1.0}, step=epoch)
        live.finish()
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    assert time.monotonic() - started < 20


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    assert resolve_tracking_uri(cwd=tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(cwd=tmp_path) == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("sqlite:////x/y.db", cwd=tmp_path) == "sqlite:////x/y.db"


def test_project_root_from_subfolders_and_dvc_experiment_copies(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / ".dvc").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "src" / "deep").mkdir(parents=True)
    # DVC runs queued experiments and `--temp` ones in full copies of the repo (with their own
    # .dvc/ and a .git file) under <root>/.dvc/tmp/exps/: they must log into the outer store.
    copies = [root / ".dvc" / "tmp" / "exps" / "run" / "4f2a1c", root / ".dvc" / "tmp" / "exps" / "tmpa8b3"]
    for copy in copies:
        (copy / ".dvc").mkdir(parents=True)
        (copy / ".git").write_text("gitdir: elsewhere\n")
        (copy / "pipelines").mkdir()
    expected = f"sqlite:///{root.resolve()}/mlflow.db"
    for cwd in (root, root / "src" / "deep", *copies, copies[0] / "pipelines"):
        assert find_project_root(cwd) == root.resolve(), cwd
        assert resolve_tracking_uri(cwd=cwd) == expected, cwd
    # A git worktree (.git is a file) counts as a root too.
    worktree = tmp_path / "wt"
    (worktree / "sub").mkdir(parents=True)
    (worktree / ".git").write_text("gitdir: /elsewhere\n")
    assert find_project_root(worktree / "sub") == worktree.resolve()


def test_outside_any_project_the_store_is_in_cwd(tmp_path: Path) -> None:
    if find_project_root(tmp_path) is not None:
        pytest.skip(f"{tmp_path} lies inside a project folder")
    assert find_project_root(tmp_path) is None
    assert resolve_tracking_uri(cwd=tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_open_ui_serves_mlflow_in_process_on_the_socket_it_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """One process: uvicorn serves on the socket `open_ui` bound itself (so a busy port is
    refused before MLflow is imported) while MLflow's app loads beside it; the printed address
    names the runs table."""
    import uvicorn

    seen: dict = {}

    def run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        seen["config"], seen["sockets"] = server.config, sockets
        seen["listening"] = sockets[0].getsockname()
        seen["app"] = server.config.app._loading.result(timeout=30)

    monkeypatch.setattr(tracking_ui, "_mlflow_app", lambda uri: f"MLflow's app for {uri}")
    monkeypatch.setattr(uvicorn.Server, "run", run)
    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)
    port = free_port()
    with caplog.at_level(logging.INFO, logger="mpdsnn"):
        assert open_ui(port=port) == 1  # the server returned without a signal: it stopped by itself
    root = tmp_path.resolve()
    assert seen["app"] == f"MLflow's app for sqlite:///{root}/mlflow.db"
    assert seen["listening"] == ("127.0.0.1", port) and seen["sockets"][0].fileno() == -1  # closed
    assert (seen["config"].host, seen["config"].port, seen["config"].lifespan) == ("127.0.0.1", port, "off")
    assert f"at http://127.0.0.1:{port}/#/experiments?workflowType=machine_learning" in caplog.text
    with pytest.raises(UserError, match="already an MLflow server"):
        open_ui("http://127.0.0.1:5000")


def _asgi_get(app, path: str) -> tuple:
    """One GET through an ASGI app, as uvicorn would send it: the coroutine function that makes
    the call, and the list that collects the messages the app sends back."""
    import asyncio

    messages: list[dict] = []
    requested: list[bool] = []

    async def receive() -> dict:
        if requested:  # the client stays connected: later reads wait, as uvicorn's do
            await asyncio.Event().wait()
        requested.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "server": ("127.0.0.1", 5000)}

    async def call() -> None:
        await app(scope, receive, send)

    return call, messages


def test_ui_answers_the_page_and_bundle_while_mlflow_imports(tmp_path: Path, store_uri: str) -> None:
    """Before MLflow's app is loaded: the index page (with view_script) and the bundle's files
    at once, with MLflow's headers; API calls and paths outside the build wait for MLflow's app,
    then everything goes to it. If MLflow cannot open the store, waiting requests get a 503."""
    import asyncio
    from concurrent.futures import Future
    from typing import Any

    build = tmp_path / "build"
    (build / "static" / "js").mkdir(parents=True)
    (build / "index.html").write_text("<html><head><title>MLflow</title></head><body></body></html>")
    (build / "static" / "js" / "main.1.js").write_text("the bundle")
    (tmp_path / "secret.txt").write_text("not for the browser")
    loading: Future = Future()
    app = tracking_ui._AnswerWhileLoading(loading, build, store_uri)

    async def scenario() -> dict:
        results = {}
        for path in ("/", "/static-files/static/js/main.1.js"):
            call, messages = _asgi_get(app, path)
            await asyncio.wait_for(call(), timeout=10)
            results[path] = messages
        waiting = {}
        for path in ("/ajax-api/2.0/mlflow/runs/search", "/static-files/../secret.txt",
                     "/static-files/static/js/none.js"):
            call, messages = _asgi_get(app, path)
            waiting[path] = (asyncio.ensure_future(call()), messages)
        await asyncio.sleep(0.3)
        results["pending"] = [path for path, (task, _) in waiting.items() if not task.done()]

        async def mlflow(scope: dict, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": f"MLflow: {scope['path']}".encode()})

        loading.set_result(mlflow)
        for path, (task, messages) in waiting.items():
            await asyncio.wait_for(task, timeout=10)
            results[path] = messages
        call, results["/ later"] = _asgi_get(app, "/")
        await call()
        return results

    results = asyncio.run(scenario())
    start, body = results["/"][0], b"".join(m.get("body", b"") for m in results["/"][1:]).decode()
    headers = dict(start["headers"])
    assert start["status"] == 200 and headers[b"content-type"] == b"text/html; charset=utf-8"
    assert headers[b"x-content-type-options"] == b"nosniff" and headers[b"x-frame-options"] == b"SAMEORIGIN"
    assert body == f"<html><head><title>MLflow</title>{tracking_ui.view_script(None)}</head><body></body></html>"
    start = results["/static-files/static/js/main.1.js"][0]
    assert start["status"] == 200 and dict(start["headers"])[b"cache-control"] == b"public, max-age=2419200"
    assert results["/static-files/static/js/main.1.js"][1]["body"] == b"the bundle"
    assert results["pending"] == ["/ajax-api/2.0/mlflow/runs/search", "/static-files/../secret.txt",
                                  "/static-files/static/js/none.js"]
    for path in (*results["pending"], "/ later"):
        assert results[path][1]["body"] == f"MLflow: {path.removesuffix(' later')}".encode()

    failed: Future = Future()
    failed.set_exception(UserError("cannot open the MLflow store sqlite:///x.db"))
    call, messages = _asgi_get(tracking_ui._AnswerWhileLoading(failed, build, store_uri), "/")
    asyncio.run(call())
    assert messages[0]["status"] == 503
    assert messages[1]["body"] == b"mpdsnn ui: cannot open the MLflow store sqlite:///x.db"


def test_ui_hands_mlflow_the_store_as_mlflow_server_would(tmp_path: Path) -> None:
    """The environment names are MLflow's own (spelt out in tracking_ui: importing them builds
    the app); artifacts go to mlartifacts/ next to a SQLite store, like the tracker's."""
    from mlflow.server import constants

    env = tracking_ui._server_env(f"sqlite:///{tmp_path}/mlflow.db")
    assert env[constants.BACKEND_STORE_URI_ENV_VAR] == env[constants.REGISTRY_STORE_URI_ENV_VAR] == \
        f"sqlite:///{tmp_path}/mlflow.db"
    assert env[constants.ARTIFACTS_DESTINATION_ENV_VAR] == (tmp_path / "mlartifacts").as_uri()
    assert env[constants.SERVE_ARTIFACTS_ENV_VAR] == "true"
    assert env[constants.ARTIFACT_ROOT_ENV_VAR] == "mlflow-artifacts:/"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_mlflow_bundle_still_reads_the_settings_the_ui_script_sets() -> None:
    """view_script writes localStorage `mlflow.workflowType_v1` = JSON "machine_learning" and
    `mlflow.assistant.fab.autoOpenedOnFirstLoad_v1` = true; this fails when an MLflow upgrade
    moves a key or its version, or the way the bundle names and reads them."""
    import re

    spec = importlib.util.find_spec("mlflow")
    bundle = Path(spec.submodule_search_locations[0], "server", "js", "build", "static", "js")
    main = "".join(p.read_text(encoding="utf-8") for p in bundle.glob("main.*.js"))
    for key, version in tracking_ui.UI_DEFAULTS:
        assert f'key:"{key}",version:{version},initialValue:' in main, key
    assert re.search(r"`\$\{(\w)\}_v\$\{(\w)\}`", main)  # the storage key: `${key}_v${version}`
    assert re.search(r"localStorage\.getItem\(\w\);return \w\?JSON\.parse\(\w\)", main)
    assert 'MACHINE_LEARNING="machine_learning"' in main


def test_view_script_fills_only_unset_settings_and_opens_the_newest_runs_table() -> None:
    script = tracking_ui.view_script("7")
    assert script.startswith("<script>") and script.endswith("</script>") and script.count("</") == 1
    assert '"mlflow.workflowType_v1": "\\"machine_learning\\""' in script  # JSON in a JS string
    assert '"mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true"' in script
    assert "if(localStorage.getItem(k)===null)localStorage.setItem(k,d[k])" in script  # a choice is kept
    assert 'location.replace("#/experiments/7/runs")' in script
    assert "location.replace" not in tracking_ui.view_script(None)  # no run yet: MLflow's home page
    page = tracking_ui.index_page("<html><head><script defer src=x></script></head><body></body></html>", "7")
    assert page == f"<html><head><script defer src=x></script>{script}</head><body></body></html>"
    with pytest.raises(ValueError, match="no </head>"):
        tracking_ui.index_page("<html><body></body></html>", None)


def test_mlflow_serves_its_index_page_with_the_view_script(store_uri: str) -> None:
    """MLflow's own app, as `mpdsnn ui` builds it (in a process of its own: it sets the server's
    environment), answers "/" with its index page plus view_script and MLflow's security headers;
    the script sends the bare address to the experiment with the newest run, looked up per visit."""
    code = (
        "import json, sys; from mpdsnn import tracking_ui as u\n"
        "u._mlflow_app(sys.argv[1])\n"
        "from mlflow.server import app\n"
        "from mlflow.tracking import MlflowClient\n"
        "get = lambda: app.test_client().get('/', headers={'Host': 'localhost'})\n"
        "before = get()\n"
        "client = MlflowClient(sys.argv[1])\n"
        "client.create_run(client.create_experiment('later'))\n"
        "after = get()\n"
        "print(json.dumps([before.status_code, before.headers.get('X-Content-Type-Options'),\n"
        "                  before.headers['Content-Type'], before.get_data(as_text=True),\n"
        "                  after.get_data(as_text=True), client.get_experiment_by_name('later').experiment_id]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, store_uri], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 0, out.stderr
    status, nosniff, content_type, page, later, experiment = json.loads(out.stdout.splitlines()[-1])
    assert (status, nosniff, content_type) == (200, "nosniff", "text/html; charset=utf-8")
    script = tracking_ui.view_script(None)  # the store has no run yet
    assert page.count(script) == 1
    assert page.index(script) < page.index("</head>") < page.index('<div id="root"')
    assert "static-files/static/js/main." in page
    assert later == page.replace(script, tracking_ui.view_script(experiment))


def test_ui_refuses_a_store_it_cannot_open(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_text("not a database")
    port = free_port()
    proc = _ui("--uri", f"sqlite:///{db}", "--port", str(port))
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot open the MLflow store sqlite:///{db}") and "--uri" in last


def test_flatten_params_keeps_values_mlflow_accepts() -> None:
    flat = tracking.flatten_params({"model": {"options": {"width": 2}, "extra": {}}, "note": "x" * 7000})
    assert flat["model.options.width"] == "2" and flat["model.extra"] == "{}"
    assert len(flat["note"]) == 6000 and flat["note"].endswith("...")


def test_deleted_experiment_is_restored(store_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store_uri)
    client.delete_experiment(client.create_experiment("mpdsnn-test"))
    tracker = open_tracker("after-delete", "mpdsnn-test", {}, uri=store_uri)
    assert tracker.active
    assert client.get_experiment_by_name("mpdsnn-test").lifecycle_stage == "active"
    tracker.finish()


# ------------------------------------------------ issue 13: stores that would cost minutes

def _open_and_log(uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> tuple[float, list[str]]:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        tracker = open_tracker("stalled", "mpdsnn-test", TAGS, uri=uri)
        tracker.log_params({"a": 1})
        tracker.log_metrics({"x": 1.0}, step=1)
        tracker.log_artifacts(run_folder(tmp_path))
        tracker.finish()
    assert not tracker.active
    return time.monotonic() - started, [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_sqlite_uri_of_a_folder_warns_once_in_seconds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Was 111 s of MLflow's engine retries per run."""
    folder = tmp_path / "store"
    folder.mkdir()
    elapsed, warnings = _open_and_log(f"sqlite:///{folder}", tmp_path, caplog)
    assert len(warnings) == 1 and f"{folder} is a folder, not a database file" in warnings[0]
    assert elapsed < 5, f"{elapsed:.1f} s"
    assert list(folder.iterdir()) == []


def test_sqlite_uri_of_a_non_database_file_warns_once_in_seconds(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes, not a database\n" * 100)
    elapsed, warnings = _open_and_log(f"sqlite:///{notes}", tmp_path, caplog)
    assert len(warnings) == 1 and "file is not a database" in warnings[0]
    assert elapsed < 5, f"{elapsed:.1f} s"
    assert notes.read_text().startswith("these are my notes")


def test_server_that_accepts_but_never_answers_warns_once_in_seconds(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A real socket on 127.0.0.1 that completes TCP handshakes (listen backlog) and never
    replies. Was 33-40 s (MLflow's read timeout x retries)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        uri = f"http://127.0.0.1:{server.getsockname()[1]}"
        elapsed, warnings = _open_and_log(uri, tmp_path, caplog)
    assert len(warnings) == 1, warnings
    assert f"no answer from {uri} within {tracking.PREFLIGHT_TIMEOUT_S:g} s" in warnings[0]
    assert elapsed < tracking.PREFLIGHT_TIMEOUT_S + 3, f"{elapsed:.1f} s"


def test_ctrl_c_marks_the_run_killed_whatever_the_caller_catches(store_uri: str) -> None:
    """docs/tracking.md: Ctrl+C -> KILLED. The engine's ``except BaseException`` finishes the
    run as FAILED; a KeyboardInterrupt being handled turns that into KILLED."""
    from mlflow.tracking import MlflowClient

    tracker = open_tracker("ctrl-c", "mpdsnn-test", {}, uri=store_uri)
    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt
        except BaseException:
            tracker.finish("FAILED")
            raise
    assert MlflowClient(store_uri).get_run(tracker.run_id).info.status == "KILLED"
    crashed = open_tracker("crash", "mpdsnn-test", {}, uri=store_uri)
    try:
        raise RuntimeError("a real failure")
    except RuntimeError:
        crashed.finish("FAILED")
    assert MlflowClient(store_uri).get_run(crashed.run_id).info.status == "FAILED"


def test_ctrl_c_during_training_records_killed(store_uri: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole path: the trainer is interrupted in its first epoch (what Ctrl+C raises)."""
    from mlflow.tracking import MlflowClient

    from mpdsnn.config import build_config
    from mpdsnn.train import Trainer, train

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    config = build_config(None, {"dataset": "digits", "method": "vanilla", "epochs": 1,
                                 "limit_batches": 1, "tracking_uri": store_uri,
                                 "experiment": "ctrl-c", "device": "cpu"})
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run")
    client = MlflowClient(store_uri)
    runs = client.search_runs([client.get_experiment_by_name("ctrl-c").experiment_id])
    assert [r.info.status for r in runs] == ["KILLED"]


# ------------------------------------------------ issue 13: `mpdsnn ui` exit codes and stopping

def _ui(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mpdsnn.cli", "ui", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
                            **kwargs)


def test_ui_on_a_busy_port_exits_2_in_seconds(tmp_path: Path) -> None:
    """Was: mlflow ui logged "Address already in use" and `mpdsnn ui` exited 0 after ~25 s."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        proc = _ui("--uri", f"sqlite:///{tmp_path}/mlflow.db", "--port", str(port))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot serve the UI on 127.0.0.1:{port}") and "--port" in last
    assert time.monotonic() - started < 15
    assert not (tmp_path / "mlflow.db").exists()  # nothing was started


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_ui_refuses_a_port_outside_the_tcp_range(tmp_path: Path, port: str) -> None:
    proc = _ui("--uri", f"sqlite:///{tmp_path}/mlflow.db", f"--port={port}")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == (f"error: --port {port} is not a TCP port; use one in "
                                            "1-65535, e.g. --port 5000")


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_mpdsnn_ui_stops_the_server_and_its_workers(
        tmp_path: Path, template_db: Path, sig: signal.Signals) -> None:
    """Was: SIGTERM to `mpdsnn ui` left `mlflow ui` and its workers serving the port. The
    signal goes to mpdsnn's pid only, as a service manager or `kill PID` would send it."""
    db = tmp_path / "mlflow.db"
    shutil.copy(template_db, db)
    port = free_port()
    proc = _ui("--uri", f"sqlite:///{db}", "--port", str(port))
    try:
        deadline = time.monotonic() + 90
        while not _serving(port):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the UI did not answer within 90 s"
            time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert tracking_ui.view_script(None) in response.read().decode()  # via MLflow's ASGI app
        pattern = f"mpdsnn.cli ui .*--port {port}"
        running = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        assert running == [str(proc.pid)]  # MLflow is served in-process: no workers to leave behind
        proc.send_signal(sig)
        proc.communicate(timeout=30)
        assert proc.returncode == 128 + sig
        assert not _serving(port)
        with socket.create_server(("127.0.0.1", port)):  # the port is free again
            pass
        leftover = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        assert leftover.returncode == 1 and leftover.stdout == "", "still running: " + leftover.stdout
    finally:
        if proc.poll() is None:
            proc.kill()


def test_every_pipeline_logs_to_the_repository_store(tmp_path):
    """pipelines/<name>/ is a DVC project of its own (dvc init --subdir); its runs still go to
    the one store at the git root, where `mpdsnn ui` looks."""
    from mpdsnn.tracking import find_project_root

    (tmp_path / ".git").mkdir()
    (tmp_path / ".dvc").mkdir()
    pipeline = tmp_path / "pipelines" / "nmnist-cpu"
    (pipeline / ".dvc").mkdir(parents=True)
    assert find_project_root(pipeline) == tmp_path
    assert find_project_root(pipeline / ".dvc" / "tmp" / "exps" / "standalone" / "x") == tmp_path
    outside = tmp_path / "other"
    (outside / ".dvc").mkdir(parents=True)
    assert find_project_root(outside) == tmp_path  # inside the repository all the same


# ------------------------------------------------ issue 15: MLflow built for SNN analysis

def _train_tiny(store_uri: str, out: Path, experiment: str, **extra) -> dict:
    from mpdsnn.config import build_config
    from mpdsnn.train import train

    config = build_config(None, {"dataset": "digits", "method": "ds-atgo", "epochs": 2,
                                 "limit_batches": 1, "probe_every": 1, "probe_samples": 16,
                                 "tracking_uri": store_uri, "experiment": experiment,
                                 "device": "cpu", **extra})
    return train(config, out)


def test_training_logs_probes_by_layer_name_in_percent_and_final_metrics(
        store_uri: str, tmp_path: Path) -> None:
    """Every epoch carries one firing-rate and one gradient-availability curve per spiking layer,
    named after the layer's module and in percent; the summary is in `final/...` metrics."""
    from mlflow.tracking import MlflowClient

    metrics = _train_tiny(store_uri, tmp_path / "run", "probes")
    client = MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("probes")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = client.search_runs([experiment.experiment_id])
    layers = __import__("pandas").read_csv(tmp_path / "run" / "probes" / "layers.csv")
    names = sorted(set(layers["layer_name"]))
    assert names and not any(n.startswith("layer0") for n in names)
    for name in names:
        key = tracking.metric_name("probe", "firing_rate", name)
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [1, 2], key
        expected = layers[layers["layer_name"] == name].sort_values("epoch")["firing_rate"] * 100
        assert [m.value for m in history] == pytest.approx(list(expected))
        assert client.get_metric_history(run.info.run_id, tracking.metric_name(
            "probe", "grad_available", name))
    logged = run.data.metrics
    for key in ("best_test_acc", "last_test_acc", "sops_per_sample", "energy_uj_per_sample",
                "activation_sparsity", "synaptic_operations", "footprint_bytes"):
        assert logged[key] == pytest.approx(metrics[key]), key
    assert logged["mean_firing_rate"] == pytest.approx(100 * metrics["mean_firing_rate"])
    assert not any(k.startswith("probe/") and not 0 <= v <= 100 for k, v in logged.items())


def test_metric_names_keep_only_what_mlflow_accepts() -> None:
    assert tracking.metric_name("probe", "firing_rate", "stem.lif") == "probe/firing_rate/stem.lif"
    assert tracking.metric_name("probe", "x", "blocks[0]<lif>") == "probe/x/blocks_0__lif_"
    row = {"train_loss": 1.0, "train_acc": 50.0, "test_loss": 2.0, "test_acc": 40.0, "lr": 0.1,
           "val_acc": None}
    assert "val/acc" not in tracking.epoch_metrics(row)
    assert tracking.final_metrics({"best_test_acc": 90.0, "val_selected_test_acc": None,
                                   "mean_firing_rate": 0.25}) == {
        "best_test_acc": 90.0, "mean_firing_rate": 25.0}


def test_retraining_a_run_folder_supersedes_its_older_mlflow_runs(store_uri: str, tmp_path: Path) -> None:
    """One visible MLflow run per run folder: an older FINISHED run and one a SIGKILL left
    RUNNING are tagged superseded_by, ended (KILLED) and soft-deleted; another folder is kept."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    folder = {"run_folder": str(tmp_path / "run")}
    first = open_tracker("digits/vanilla/seed0", "again", {**TAGS, **folder}, uri=store_uri)
    first.finish()
    crashed = open_tracker("digits/vanilla/seed0", "again", {**TAGS, **folder}, uri=store_uri)
    other = open_tracker("digits/vanilla/seed1", "again", {**TAGS, "run_folder": str(tmp_path / "x")},
                         uri=store_uri)
    other.finish()
    client = MlflowClient(store_uri)
    assert client.get_run(crashed.run_id).info.status == "RUNNING"  # as a SIGKILL leaves it
    crashed._client = None  # the process is gone: it never ends its run
    latest = open_tracker("digits/vanilla/seed0", "again", {**TAGS, **folder}, uri=store_uri)
    latest.finish()
    exp = client.get_experiment_by_name("again").experiment_id
    visible = {r.info.run_id for r in client.search_runs([exp])}
    assert visible == {latest.run_id, other.run_id}
    for old, status, by in ((first.run_id, "FINISHED", crashed.run_id),
                            (crashed.run_id, "KILLED", latest.run_id)):
        run = client.get_run(old)
        assert run.data.tags["superseded_by"] == by
        assert (run.info.status, run.info.lifecycle_stage) == (status, "deleted")
    assert len(client.search_runs([exp], run_view_type=ViewType.ALL)) == 4


def test_ui_url_opens_the_model_training_view(store_uri: str) -> None:
    assert tracking_ui.ui_url("127.0.0.1", 5000) == \
        "http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
    assert tracking_ui.ui_url("::1", 80, "3") == \
        "http://[::1]:80/#/experiments/3/runs?workflowType=machine_learning"
    assert tracking_ui.latest_experiment(store_uri) is None  # no run yet
    open_tracker("a", "first", TAGS, uri=store_uri).finish()
    second = open_tracker("b", "second", TAGS, uri=store_uri)
    second.finish()
    from mlflow.tracking import MlflowClient

    assert tracking_ui.latest_experiment(store_uri) == \
        MlflowClient(store_uri).get_experiment_by_name("second").experiment_id
    assert tracking_ui.latest_experiment("http://127.0.0.1:5000") is None


@pytest.mark.parametrize("folder", ["/runs/it's", '/runs/say "x"', "/runs/both ' \""])
def test_a_run_folder_with_quotes_is_superseded_too(store_uri: str, folder: str) -> None:
    """MLflow's filter strings have no escapes: a quote in the path must not hide older runs."""
    from mlflow.tracking import MlflowClient

    old = open_tracker("r", "quotes", {"run_folder": folder}, uri=store_uri)
    old.finish()
    new = open_tracker("r", "quotes", {"run_folder": folder}, uri=store_uri)
    new.finish()
    assert MlflowClient(store_uri).get_run(old.run_id).data.tags["superseded_by"] == new.run_id


def test_a_resumed_run_carries_the_earlier_epochs_of_the_run_it_supersedes(store_uri: str) -> None:
    """SIGKILL after epoch 2, resume at epoch 3: the new (visible) run has epochs 1-3; a retrain
    from epoch 1 into the same folder carries nothing over."""
    from mlflow.tracking import MlflowClient

    folder = {"run_folder": "/runs/digits/ds-atgo/seed0"}
    killed = open_tracker("r", "resume", folder, uri=store_uri)
    for epoch in (1, 2):
        killed.log_metrics({"test/acc": 10.0 * epoch, "probe/firing_rate/stem.lif": 5.0}, step=epoch)
    killed._client = None  # SIGKILL: the run stays RUNNING
    resumed = open_tracker("r", "resume", folder, uri=store_uri)
    resumed.log_metrics({"test/acc": 30.0}, step=3)
    resumed.finish()
    client = MlflowClient(store_uri)
    assert [(m.step, m.value) for m in client.get_metric_history(resumed.run_id, "test/acc")] == \
        [(1, 10.0), (2, 20.0), (3, 30.0)]
    assert [m.step for m in client.get_metric_history(resumed.run_id, "probe/firing_rate/stem.lif")] == [1, 2]
    assert client.get_run(killed.run_id).info.status == "KILLED"
    again = open_tracker("r", "resume", folder, uri=store_uri)
    again.log_metrics({"test/acc": 12.0}, step=1)
    again.finish()
    assert [m.step for m in client.get_metric_history(again.run_id, "test/acc")] == [1]
