"""MLflow tracking: with tracking_ui (`mpdsnn ui`) the only module that talks to MLflow, so
training never depends on it.

MLflow is where people browse and compare runs; the run folders (docs/run-folder.md) stay the
source of truth. Hence every call here is best-effort: the first tracking failure is logged once
as a warning and the `Tracker` turns into a no-op, so an unreachable server or a broken store
costs a warning, never a training run.

Store. Without an explicit URI or `MLFLOW_TRACKING_URI`, runs go to `<root>/mlflow.db` (SQLite;
MLflow 3 refuses the old ./mlruns file store) with artifacts in `<root>/mlartifacts/`, where
<root> is the project folder holding `.dvc/` or `.git/`. Both paths are absolute, and a DVC
experiment running in a copy under `<root>/.dvc/tmp/exps/...` resolves to the outer <root>, so
queued and `--temp` experiments share one store.

Usage (the engine logs from rank 0 only)::

    tracker = open_tracker("ds-atgo-cifar10-seed0", "mpdsnn", tags, enabled=rank == 0)
    tracker.log_params(config)                       # nested keys become "a.b.c"
    for epoch in ...: tracker.log_metrics({"test_acc": acc}, step=epoch)
    tracker.log_artifacts(run_dir); tracker.log_model(model); tracker.finish()
"""

from __future__ import annotations

import http.client
import logging
import os
import sqlite3
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # torch is imported where a model is logged: `mpdsnn ui` starts 3-4 s sooner
    import torch

_log = logging.getLogger(__name__)

DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
# An unreachable server should cost seconds: MLflow's defaults (7 retries with exponential
# backoff, 120 s timeout) would stall training for minutes. Only set when the user has not.
# Worst case once the store was reachable: 2 tries x 5 s + 1 s backoff, then the tracker is off.
_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}
# The pre-flight's limit: a server that accepts connections but never answers would otherwise
# cost MLflow's full timeout and retries before the first warning.
PREFLIGHT_TIMEOUT_S = 5.0
_STATUSES = ("FINISHED", "FAILED", "KILLED")
# MLflow limits (mlflow.utils.validation): params per batch, metrics per batch, param value length.
_PARAMS_PER_BATCH, _METRICS_PER_BATCH, _MAX_PARAM_LEN = 100, 1000, 6000
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# Final metrics taken from metrics.json under their own (NeuroBench and run-folder) names.
FINAL_KEYS = ("best_test_acc", "last_test_acc", "val_selected_test_acc", "mean_firing_rate",
              "sops_per_sample", "energy_uj_per_sample", "activation_sparsity",
              "synaptic_operations", "synaptic_operations_macs", "footprint_bytes",
              "train_seconds", "train_samples_per_s", "test_acc_batch_thresholds")
RUN_FOLDER_TAG = "run_folder"
SUPERSEDED_TAG = "superseded_by"


def find_project_root(cwd: Path | None = None) -> Path | None:
    """The git repository's root above `cwd` (else the nearest folder holding `.dvc/`): one
    store for the default pipeline and every `pipelines/<name>/`, which are DVC projects of their
    own inside the repository. For a DVC experiment copy under `<root>/.dvc/tmp/exps/...` the
    outer <root>. None outside any project."""
    here = (cwd or Path.cwd()).resolve()
    parts = here.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            here = Path(*parts[:i])
            break
    for marker in (".git", ".dvc"):
        for folder in (here, *here.parents):
            if (folder / marker).exists():
                return folder
    return None


def resolve_tracking_uri(explicit: str | None = None, cwd: Path | None = None) -> str:
    """explicit > env MLFLOW_TRACKING_URI > `sqlite:///<project root>/mlflow.db` (absolute;
    the root is `find_project_root(cwd)`, or `cwd` itself outside a project)."""
    if explicit:
        return explicit
    if env := os.environ.get("MLFLOW_TRACKING_URI"):
        return env
    base = cwd or Path.cwd()
    root = find_project_root(base) or base.resolve()
    return "sqlite:///" + (root / DB_NAME).as_posix()


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (relative paths are relative to the cwd, as in
    SQLAlchemy); None for other stores and in-memory SQLite."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return (Path.cwd() / path).resolve() if path else None


def _artifact_root(uri: str) -> Path | None:
    """Where a SQLite store keeps artifacts: `mlartifacts/` next to the database. None for a
    server or another database, which choose their own artifact location."""
    db = _sqlite_path(uri)
    return db.parent / ARTIFACTS_DIR if db else None


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """MLflow params are flat strings: {"a": {"b": 1}, "c": [1, 2]} -> {"a.b": "1", "c": "[1, 2]"}.
    Values longer than MLflow's limit are cut (with "...") rather than failing the run."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, name + "."))
        else:
            text = str(value)
            flat[name] = text if len(text) <= _MAX_PARAM_LEN else text[: _MAX_PARAM_LEN - 3] + "..."
    return flat


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Serialise opening a SQLite store across processes. Two processes creating a fresh
    database at once both run MLflow's alembic migrations and one fails ("Online migration
    expected to match one row"); two creating the same experiment would also collide. Once the
    store exists, concurrent runs log without locking errors (SQLite's own 5 s busy timeout)."""
    db = _sqlite_path(uri)
    try:
        import fcntl
    except ImportError:  # Windows: no flock; concurrent first use of a fresh store may fail once
        fcntl = None
    if db is None or fcntl is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class StoreUnusable(Exception):
    """The pre-flight found the tracking store unusable; the message says why."""


def _check_sqlite_store(db: Path) -> None:
    """Open the SQLite file once, directly: a folder, a non-database file or an unwritable
    location fail here at once, where MLflow would retry its engine for ~2 minutes first."""
    if db.is_dir():
        raise StoreUnusable(f"{db} is a folder, not a database file; point the URI at a file "
                            f"such as sqlite:///{(db / DB_NAME).as_posix()}")
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        with closing(sqlite3.connect(db, timeout=PREFLIGHT_TIMEOUT_S)) as conn:
            conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        raise StoreUnusable(f"{db}: {exc}") from None


def _check_http_store(uri: str) -> None:
    """One HTTP request with a short timeout: any answer (any status) means the server is
    alive; silence for PREFLIGHT_TIMEOUT_S seconds means tracking is off for this run."""
    parts = urlsplit(uri)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=PREFLIGHT_TIMEOUT_S,
            context=ssl._create_unverified_context())  # liveness only; MLflow checks the certificate
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=PREFLIGHT_TIMEOUT_S)
    try:
        conn.request("GET", (parts.path.rstrip("/") or "") + "/health")
        conn.getresponse().read(0)
    except (OSError, http.client.HTTPException) as exc:
        raise StoreUnusable(f"no answer from {uri} within {PREFLIGHT_TIMEOUT_S:g} s "
                            f"({type(exc).__name__}: {exc})") from None
    finally:
        conn.close()


def preflight(uri: str) -> None:
    """Raise StoreUnusable, in seconds, for a store MLflow would spend minutes retrying."""
    if db := _sqlite_path(uri):
        _check_sqlite_store(db)
    elif uri.startswith(("http://", "https://")):
        _check_http_store(uri)


class _DropRetryWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Retrying")


@contextmanager
def _quiet_http_retries() -> Iterator[None]:
    """urllib3 warns at every HTTP retry; the Tracker's one warning reports the outcome instead."""
    logger, drop = logging.getLogger("urllib3.connectionpool"), _DropRetryWarnings()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def metric_name(*parts: str) -> str:
    """Join parts with "/" keeping only characters MLflow accepts in a metric name
    (alphanumerics, ``_ - . / : space``); anything else becomes "_"."""
    text = "/".join(parts)
    return "".join(c if c.isalnum() or c in "_-./: " else "_" for c in text)


def epoch_metrics(row: Mapping[str, Any], probe: Any = None) -> dict[str, float]:
    """One epoch's MLflow metrics: losses, accuracies (percent), the learning rate, and, when
    probed, each spiking layer's firing rate and gradient availability in percent under the
    layer's module name (``probe/firing_rate/stem.lif``), so the charts compare with accuracy."""
    metrics = {"train/loss": row["train_loss"], "train/acc": row["train_acc"],
               "test/loss": row["test_loss"], "test/acc": row["test_acc"], "train/lr": row["lr"]}
    if row.get("val_acc") is not None:
        metrics["val/acc"] = row["val_acc"]
    if probe is not None:
        for r in probe.layers.itertuples():
            for what in ("firing_rate", "grad_available"):
                metrics[metric_name("probe", what, r.layer_name)] = 100.0 * float(getattr(r, what))
    return {k: float(v) for k, v in metrics.items()}


def final_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finished run's summary (from metrics.json) as MLflow metrics under their own names:
    accuracies, energy, SOPs, mean firing rate (percent) and the NeuroBench names. Missing or
    None values (no validation split, no adaptive thresholds) are left out. No prefix: MLflow
    3.17's run page lists chart sections by prefix, alphabetically, and unprefixed metrics last,
    so these one-point charts come after the per-epoch curves instead of before them."""
    out = {}
    for key in FINAL_KEYS:
        value = metrics.get(key)
        if value is None:
            continue
        out[key] = 100.0 * float(value) if key == "mean_firing_rate" else float(value)
    return out


def _supersede(client: Any, experiment_id: str, run_folder: str, new_run_id: str) -> list[Any]:
    """Older MLflow runs of the same run folder: a retrain or resume into one ``--out`` replaces
    them. Each gets the tag ``superseded_by`` = the new run id, one still RUNNING (its process
    was SIGKILLed) is ended KILLED, and all are soft-deleted so the runs table and its group-by
    count each run folder once (MLflow's "deleted runs" view still shows them). Returns them,
    newest first."""
    from mlflow.entities import ViewType

    # MLflow's filter strings have no escapes: quote with the mark the path lacks; a path with
    # both marks is matched here instead (the equality test below is the one that counts).
    quote = next((q for q in ("'", '"') if q not in run_folder), None)
    where = f"tags.{RUN_FOLDER_TAG} = {quote}{run_folder}{quote}" if quote else ""
    older = [run for run in client.search_runs([experiment_id], filter_string=where,
                                               run_view_type=ViewType.ACTIVE_ONLY, max_results=1000)
             if run.info.run_id != new_run_id and run.data.tags.get(RUN_FOLDER_TAG) == run_folder]
    for run in older:
        client.set_tag(run.info.run_id, SUPERSEDED_TAG, new_run_id)
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "KILLED")
        client.delete_run(run.info.run_id)
    return sorted(older, key=lambda run: run.info.start_time or 0, reverse=True)


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    """Get-or-create the experiment, tolerating another process creating it in between."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            # Says the experiment holds model-training runs (MLflow 3.0-3.16 UIs open such an
            # experiment on its runs table; 3.17 ignores it, see mpdsnn/tracking_ui.py).
            return client.create_experiment(name, artifact_location=artifact_location,
                                            tags=EXPERIMENT_KIND)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            found = client.get_experiment_by_name(name)
    if found.lifecycle_stage == "deleted":
        _log.info("restoring deleted MLflow experiment %r to log into it", name)
        client.restore_experiment(found.experiment_id)
    return found.experiment_id


class Tracker:
    """One MLflow run, or a no-op (`active` is False) when disabled or after a failure.

    No method raises on a tracking failure: the first one is logged once as a warning and the
    tracker stops talking to MLflow. Use as a context manager to finish the run as FAILED or
    KILLED when training raises.
    """

    def __init__(self, client: Any = None, run_id: str | None = None, uri: str | None = None,
                 predecessor: str | None = None):
        self._client = client
        self.run_id = run_id
        self.uri = uri
        self._predecessor = predecessor  # the superseded run a resume continues

    @property
    def active(self) -> bool:
        return self._client is not None

    def _guard(self, what: str, call: Callable[[Any], None]) -> None:
        if self._client is None:
            return
        try:
            with _quiet_http_retries():
                call(self._client)
        except Exception as exc:  # noqa: BLE001 - tracking must never stop training
            self._client = None
            _log.warning(
                "MLflow tracking off for the rest of this run: %s failed at %s (%s: %s)",
                what, self.uri, type(exc).__name__, exc,
            )

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log the resolved config; nested dicts become dotted keys (`method_options.width`)."""
        items = list(flatten_params(params).items())

        def call(client: Any) -> None:
            from mlflow.entities import Param

            for i in range(0, len(items), _PARAMS_PER_BATCH):
                chunk = [Param(k, v) for k, v in items[i : i + _PARAMS_PER_BATCH]]
                client.log_batch(self.run_id, params=chunk, synchronous=True)

        self._guard("log_params", call)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log scalar metrics at `step` (the engine uses the 1-based epoch)."""

        def call(client: Any) -> None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            entries = [Metric(k, float(v), now, int(step)) for k, v in metrics.items()]
            if self._predecessor is not None:  # first log of this run
                entries = self._carried_over(client, int(step)) + entries
                self._predecessor = None
            for i in range(0, len(entries), _METRICS_PER_BATCH):
                client.log_batch(self.run_id, metrics=entries[i : i + _METRICS_PER_BATCH],
                                 synchronous=True)

        self._guard("log_metrics", call)

    def _carried_over(self, client: Any, first_step: int) -> list[Any]:
        """A resumed run's first epoch is past 1: the superseded run's metrics of the epochs
        before it, so the new run's curves are whole (a retrain from epoch 1 takes none)."""
        from mlflow.entities import Metric

        if first_step <= 1:
            return []
        old = client.get_run(self._predecessor)
        return [Metric(key, m.value, m.timestamp, m.step) for key in old.data.metrics
                for m in client.get_metric_history(self._predecessor, key) if m.step < first_step]

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        """Copy the files under `folder` into the run's artifacts (under `artifact_path`)."""
        if self._client is not None and not Path(folder).is_dir():
            _log.warning("not logging artifacts: %s is not a folder", folder)
            return
        self._guard("log_artifacts",
                    lambda client: client.log_artifacts(self.run_id, str(folder), artifact_path))

    def log_files(self, files: list[Path], folder: Path) -> None:
        """Log these files (a run folder's own, from ``RunWriter.files()``) under their paths
        relative to ``folder``; never a whole folder, so nothing else is ever uploaded."""
        def call(client: Any) -> None:
            for path in files:
                parent = path.parent.relative_to(folder).as_posix()
                client.log_artifact(self.run_id, str(path), None if parent == "." else parent)

        self._guard("log_artifacts", call)

    def log_model(self, model: torch.nn.Module) -> None:
        """Log the final weights as artifact `model/state_dict.pt` (CPU tensors, a plain torch
        state dict: `model.load_state_dict(torch.load(path))` restores it). A DDP wrapper is
        unwrapped so the keys match the bare model."""
        if self._client is None:
            return
        import torch

        ddp = torch.nn.parallel.DistributedDataParallel
        inner = model.module if isinstance(model, ddp) else model
        state = {k: v.detach().cpu() for k, v in inner.state_dict().items()}

        def call(client: Any) -> None:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save(state, Path(tmp) / "state_dict.pt")
                client.log_artifacts(self.run_id, tmp, "model")

        self._guard("log_model", call)

    def finish(self, status: str = "FINISHED") -> None:
        """End the run with `status` (FINISHED, FAILED or KILLED); later calls are no-ops.

        FAILED while a KeyboardInterrupt is being handled becomes KILLED: Ctrl+C is the user
        stopping the run, whichever ``except`` clause of the caller catches it."""
        if status not in _STATUSES:
            raise ValueError(f"unknown run status {status!r}; valid: {', '.join(_STATUSES)}")
        if status == "FAILED" and isinstance(sys.exc_info()[1], KeyboardInterrupt):
            status = "KILLED"
        self._guard("finish", lambda client: client.set_terminated(self.run_id, status))
        self._client = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.finish("FINISHED")
        else:
            self.finish("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")


def open_tracker(run_name: str, experiment: str, tags: Mapping[str, str], enabled: bool = True,
                 uri: str | None = None) -> Tracker:
    """Start an MLflow run named `run_name` in `experiment` (created if missing) with `tags`
    (method, dataset, seed, git commit, DVC stage, data fingerprint, ...) plus mlflow.runName.

    `enabled=False` (every DDP rank but 0) gives a no-op tracker without touching MLflow. If the
    store cannot be reached, one warning is logged and a no-op tracker is returned.
    """
    if not enabled:
        return Tracker()
    uri = resolve_tracking_uri(uri)
    if uri.startswith(("http://", "https://")):
        for name, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
    run_tags = {str(k): str(v) for k, v in tags.items()}
    run_tags["mlflow.runName"] = run_name
    artifacts = _artifact_root(uri)
    location = (artifacts / experiment).as_uri() if artifacts else None
    try:
        preflight(uri)
        from mlflow.tracking import MlflowClient

        with _quiet_http_retries():
            with _store_lock(uri):
                client = MlflowClient(tracking_uri=uri)
                experiment_id = _experiment_id(client, experiment, location)
            run = client.create_run(experiment_id, run_name=run_name, tags=run_tags)
            gone = []
            if folder := run_tags.get(RUN_FOLDER_TAG):
                if gone := _supersede(client, experiment_id, folder, run.info.run_id):
                    _log.info("MLflow run %s supersedes %d older run(s) of %s",
                              run.info.run_id, len(gone), folder)
    except Exception as exc:  # noqa: BLE001 - tracking must never stop training
        _log.warning("MLflow tracking off for this run: cannot open the store at %s (%s: %s)",
                     uri, type(exc).__name__, exc)
        return Tracker()
    _log.info("MLflow run %s (%s) in experiment %r at %s",
              run.info.run_id, run_name, experiment, uri)
    return Tracker(client, run.info.run_id, uri, gone[0].info.run_id if gone else None)
