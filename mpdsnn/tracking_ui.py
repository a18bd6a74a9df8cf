"""`mpdsnn ui`: MLflow's web UI on the project's run store, opening on the runs table.

Served in this process: MLflow's own app (`mlflow.server.fastapi_app`, what `mlflow ui` runs)
under uvicorn on a socket we bind ourselves. `mlflow ui` would start two more interpreters (its
CLI, then uvicorn), each importing MLflow (4-10 s apiece on the shared 2-core machine) and
opening the store; here MLflow is imported and the store opened once, in a thread, while the
page and its bundle are already being served (`_AnswerWhileLoading`).

MLflow 3.17's UI opens in its GenAI view (traces) unless told otherwise, and ignores the
experiment tag `mlflow.experimentKind` (docs/tracking.md, "The GenAI view of MLflow 3.17"). So
the index page gets one inline script that picks the model-training view for a browser that
has not chosen one yet (see `view_script`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import signal
import socket
import sqlite3
import threading
import warnings
from concurrent.futures import Future
from contextlib import closing
from pathlib import Path
from typing import Any

from mpdsnn.errors import UserError
from mpdsnn.tracking import _artifact_root, _sqlite_path, resolve_tracking_uri

_log = logging.getLogger(__name__)

# The view comes from this URL query parameter, else from the browser's localStorage, else
# "genai"; the parameter survives in-app navigation, but not a run link opened from the table.
UI_WORKFLOW_QUERY = "workflowType=machine_learning"
# Browser settings MLflow 3.17.2's bundle keeps in localStorage (server/js/build/static/js/
# main.*.js: useLocalStorage({key, version}) stores JSON under `<key>_v<version>`), with the
# values `mpdsnn ui` starts a browser on: the model-training view (module 7975; else "genai"),
# and its assistant panel counted as already opened once (it opens itself on a first visit).
# tests/test_tracking.py fails if the installed bundle stops reading these keys.
UI_DEFAULTS: dict[tuple[str, int], object] = {("mlflow.workflowType", 1): "machine_learning",
                                              ("mlflow.assistant.fab.autoOpenedOnFirstLoad", 1): True}
# Open keep-alive requests may delay a stop by at most this long.
_GRACEFUL_STOP_S = 5
# What MLflow's Flask app and security middleware send with the index page and static files
# (mlflow/server/__init__.py `serve_static_file`, max_age=2419200; mlflow/server/security.py).
_INDEX_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN"}
_STATIC_HEADERS = {**_INDEX_HEADERS, "Cache-Control": "public, max-age=2419200"}


def ui_url(host: str, port: int, experiment_id: str | None = None) -> str:
    """The address to print: with an experiment, straight to its runs table; the view is in
    the URL too, for a browser that already chose GenAI."""
    shown = f"[{host}]" if ":" in host else host
    where = f"experiments/{experiment_id}/runs" if experiment_id else "experiments"
    return f"http://{shown}:{port}/#/{where}?{UI_WORKFLOW_QUERY}"


def latest_experiment(uri: str) -> str | None:
    """The id of the experiment holding the newest active run of a SQLite store (read with
    sqlite3: MLflow's client costs seconds to import). None when unknown; only a hint."""
    db = _sqlite_path(uri)
    if db is None or not db.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1)) as conn:
            row = conn.execute("SELECT experiment_id FROM runs WHERE lifecycle_stage = 'active' "
                               "ORDER BY start_time DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def view_script(experiment_id: str | None) -> str:
    """The script `mpdsnn ui` adds to MLflow's index page; it runs before MLflow's (deferred)
    bundle reads its settings, so the bare address and run pages opened from the runs table show
    the model-training view too. It only fills settings this browser has not chosen (a person
    who switches to GenAI keeps it), and sends the bare address to the runs table of the
    experiment with the newest run."""
    defaults = json.dumps({f"{key}_v{version}": json.dumps(value)
                           for (key, version), value in UI_DEFAULTS.items()})
    script = ("/* mpdsnn ui, for MLflow 3.17: start on model training, not GenAI */"
              f"try{{var d={defaults};for(var k in d)if(localStorage.getItem(k)===null)"
              "localStorage.setItem(k,d[k])}catch(e){}")
    if experiment_id is not None:
        runs = json.dumps(f"#/experiments/{experiment_id}/runs")
        script += f'if(location.hash===""||location.hash==="#/")location.replace({runs});'
    return "<script>" + script.replace("</", "<\\/") + "</script>"


def index_page(html: str, experiment_id: str | None) -> str:
    """MLflow's index.html with `view_script` in its head."""
    if "</head>" not in html:
        raise ValueError("MLflow's index.html has no </head>")
    return html.replace("</head>", view_script(experiment_id) + "</head>", 1)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket the server will use: a busy or invalid port is refused here, in
    one line, before MLflow is imported."""
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a TCP port; use one in 1-65535, e.g. --port 5000")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        with socket.create_server(("127.0.0.1", 0)) as free:
            other = free.getsockname()[1]
        raise UserError(f"cannot serve the UI on {host}:{port} ({exc.strerror or exc}); another "
                        f"program holds it or the address is not this machine's: pass a free "
                        f"port such as --port {other}, or another --host") from None


def _server_env(uri: str) -> dict[str, str]:
    """What `mlflow ui` hands its server through the environment (mlflow/server/__init__.py,
    `_run_server`; names from mlflow/server/constants.py, spelt out because importing that
    module already builds the app): the store, artifacts proxied by the server (its default)
    to `<root>/mlartifacts` for a SQLite store at <root>, else to MLflow's `./mlartifacts`."""
    artifacts = _artifact_root(uri)
    destination = (artifacts.as_uri() if artifacts
                   else os.environ.get("MLFLOW_ARTIFACTS_DESTINATION", "./mlartifacts"))
    return {"_MLFLOW_SERVER_FILE_STORE": uri, "_MLFLOW_SERVER_REGISTRY_STORE": uri,
            "_MLFLOW_SERVER_SERVE_ARTIFACTS": "true",
            "_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",
            "_MLFLOW_SERVER_ARTIFACT_DESTINATION": destination,
            # No GenAI job runner: `mlflow ui` would start it as 7 more processes.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "_MLFLOW_SGI_NAME": "uvicorn"}


def _mlflow_app(uri: str) -> Any:
    """MLflow's ASGI app for the store, its index page carrying `view_script`. The store is
    opened (tables created or migrated) here, so a broken one ends `mpdsnn ui` in one line
    instead of failing each API call."""
    os.environ.update(_server_env(uri))  # before the import: MLflow reads it there
    # MLflow 3.17 imports starlette's deprecated WSGI module: nothing a user of the UI can act on.
    warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
    from flask import Response
    from mlflow.server import app as flask_app
    from mlflow.server.fastapi_app import app
    from mlflow.server.handlers import initialize_backend_stores

    html = (Path(flask_app.static_folder) / "index.html").read_text(encoding="utf-8")
    # MLflow routes "/" to the Flask view `serve` (mlflow/server/__init__.py); replacing the view
    # keeps every header MLflow's middleware adds to it. The newest experiment is looked up on
    # each visit: runs keep arriving while the UI is up.
    if "serve" not in flask_app.view_functions:
        _log.warning("this MLflow has no index view `serve`: its UI may open on the GenAI view")
    flask_app.view_functions["serve"] = lambda: Response(
        index_page(html, latest_experiment(uri)), mimetype="text/html")
    try:
        initialize_backend_stores(uri, uri, "mlflow-artifacts:/")
    except Exception as exc:  # noqa: BLE001 - any store error means: nothing to serve
        raise UserError(f"cannot open the MLflow store {uri} ({type(exc).__name__}: {exc}); "
                        "pass another with --uri or fix that database") from None
    return app


def _mlflow_build() -> Path:
    """MLflow's built UI (index.html, static/), found without importing MLflow."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("MLflow is not installed: pip install -r requirements.txt")
    return Path(spec.submodule_search_locations[0], "server", "js", "build")


def _load_in_background(uri: str) -> Future:
    """`_mlflow_app(uri)` in a daemon thread (a stop need not wait for the import to end)."""
    loading: Future = Future()

    def load() -> None:
        try:
            loading.set_result(_mlflow_app(uri))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the app
            loading.set_exception(exc)

    threading.Thread(target=load, name="mlflow-import", daemon=True).start()
    return loading


class _AnswerWhileLoading:
    """The ASGI app uvicorn serves: MLflow's, once imported. Until then it answers what needs
    no MLflow at once, the index page and the bundle's files from MLflow's build folder (with
    the headers MLflow gives them), so the browser fetches and parses MLflow's multi-megabyte
    bundle while MLflow imports; any other request waits for MLflow's app."""

    def __init__(self, loading: Future, build: Path, uri: str) -> None:
        self._loading, self._build, self._uri = loading, build.resolve(), uri

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if not self._loading.done() and scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            if early := self._early(scope["path"]):
                await early(scope, receive, send)
                return
        try:
            app = await asyncio.wrap_future(self._loading)
        except Exception as exc:  # noqa: BLE001 - the store could not be opened: open_ui says so
            if scope["type"] == "http":
                from starlette.responses import PlainTextResponse

                await PlainTextResponse(f"mpdsnn ui: {exc}", status_code=503)(scope, receive, send)
            return
        await app(scope, receive, send)

    def _early(self, path: str) -> Any:
        from starlette.responses import FileResponse, HTMLResponse

        if path == "/":
            page = index_page((self._build / "index.html").read_text(encoding="utf-8"),
                              latest_experiment(self._uri))
            return HTMLResponse(page, headers=_INDEX_HEADERS)
        if path.startswith("/static-files/"):
            file = (self._build / path.removeprefix("/static-files/")).resolve()
            if file.is_relative_to(self._build) and file.is_file():
                return FileResponse(file, headers=_STATIC_HEADERS)
        return None


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def open_ui(uri: str | None = None, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Serve the MLflow UI for the store until Ctrl+C or SIGTERM.

    Binds 127.0.0.1 unless told otherwise and refuses a busy or invalid port before MLflow is
    imported. Returns 128 + the signal after stopping (uvicorn finishes open requests for up
    to 5 s), 1 if the server stopped on its own. Runs no GenAI job runner (use `mlflow server`
    for evaluation jobs).
    """
    uri = resolve_tracking_uri(uri)
    if uri.startswith(("http://", "https://")):
        raise UserError(f"{uri} is already an MLflow server: open it in a browser, or pass a "
                        "database URI such as sqlite:///path/to/mlflow.db to serve that store")
    sock = _bind(host, port)
    _log.info("MLflow UI for %s at %s (Ctrl+C stops it)", uri,
              ui_url(host, port, latest_experiment(uri)))

    def stop(signum: int, _frame: Any) -> None:
        raise _Stopped(signum)

    # uvicorn takes these over while serving and, after its graceful stop, restores them and
    # raises the signal again: `stop` then ends this function either way.
    handlers = ({sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
                if threading.current_thread() is threading.main_thread() else {})
    try:
        import uvicorn

        loading = _load_in_background(uri)
        # lifespan off: MLflow's only reaps its assistant's orphaned Docker sandboxes.
        server = uvicorn.Server(uvicorn.Config(
            _AnswerWhileLoading(loading, _mlflow_build(), uri), host=host, port=port,
            log_config=None, access_log=False, lifespan="off",
            timeout_graceful_shutdown=_GRACEFUL_STOP_S))
        loading.add_done_callback(lambda done: done.exception() and setattr(server, "should_exit", True))
        server.run(sockets=[sock])
        if loading.done() and loading.exception():
            raise loading.exception()
    except _Stopped as stopped:
        return 128 + stopped.signum
    finally:
        sock.close()
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
    _log.error("the MLflow UI server stopped on its own; see its messages above")
    return 1
