"""``mpdsnn``: one command for training, evaluation, listing, reports, claims, benchmarks and the UI.

User errors print one line (``error: ...``) and exit 2 without a traceback; a run stopped by a
signal exits 143 after saying how to resume.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from mpdsnn.errors import UserError, did_you_mean

log = logging.getLogger("mpdsnn")


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value) if value != "" else None
    except yaml.YAMLError as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or "not valid YAML").split())
        raise argparse.ArgumentTypeError(f"{key.strip()}={value!r}: {problem}; quote a string "
                                         "or write a YAML value such as 1e-4, true, [1, 2]") from None


class _Lazy:
    """Help text made only when help is printed: the registries and TrainConfig import torch
    (about 3 s), which every other command line must not pay for."""

    def __init__(self, make: Callable[[], str]) -> None:
        self.make = make


def _config_default(key: str) -> Any:
    """A TrainConfig default, so that help cannot drift from the config."""
    from mpdsnn.config import TrainConfig

    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}[key]


def _default(key: str, note: str) -> _Lazy:
    return _Lazy(lambda: f"{note} (default: {_config_default(key)})")


def _names(kind: str, note: str = "", default: str | None = None) -> _Lazy:
    """The registered methods, datasets or models, plugins included, listed in the help (not
    argparse choices: an unknown name gets a did-you-mean UserError instead)."""
    def make() -> str:
        if kind == "method":
            from mpdsnn.methods import list_methods as names
        elif kind == "dataset":
            from mpdsnn.data import list_datasets as names
        else:
            from mpdsnn.models import list_models as names
        value = _config_default(kind) if default is None and kind != "model" else default
        tail = f" (default: {value})" if value else ""
        return f"{note}one of: {', '.join(names())}{tail}".replace("%", "%%")
    return _Lazy(make)


class _OneLineParser(argparse.ArgumentParser):
    """Bad flags get one line (``error: ...``) and exit 2, like every other user error, instead
    of argparse's multi-line usage block; unknown commands and options suggest the closest."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")

    def format_help(self) -> str:
        for action in self._actions:
            if isinstance(action.help, _Lazy):
                action.help = action.help.make()
        return super().format_help()

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}; "
                                         f"{did_you_mean(str(value), map(str, action.choices))}"
                                         f"choose from {', '.join(map(str, action.choices))}")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            options = [o for p in self._chosen(parsed) for o in p._option_string_actions]
            flags = [e.split("=", 1)[0] for e in extras if e.startswith("-")]
            hint = did_you_mean(flags, options).strip()
            self._chosen(parsed)[-1].error(f"unrecognized arguments: {' '.join(extras)}"
                                           + (f" ({hint})" if hint else ""))
        return parsed

    def _chosen(self, parsed: argparse.Namespace) -> list[argparse.ArgumentParser]:
        """This parser and the subcommand's, whose options an unknown flag was meant to be."""
        subs = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
        command = getattr(parsed, "command", None)
        return [self, *(s.choices[command] for s in subs if command in s.choices)]


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags = {"method": args.method, "dataset": args.dataset, "model": args.model, "seed": args.seed,
             "epochs": args.epochs, "T": args.T, "lr": args.lr, "batch_size": args.batch_size,
             "device": args.device, "limit_batches": args.limit_batches,
             "checkpoint_dir": args.checkpoint_dir, "mirror": args.mirror}
    overrides = {k: v for k, v in flags.items() if v is not None}
    if args.no_tracking:
        overrides["tracking"] = False
    overrides.update(dict(args.set or []))
    if args.method_option:
        given = overrides.get("method_options") or {}
        if not isinstance(given, dict):
            raise UserError(f"--set method_options={given} is not a mapping; write "
                            "--set 'method_options={fc: 1.2}' or use --method-option fc=1.2")
        overrides["method_options"] = {**given, **dict(args.method_option)}
    return overrides


def _already_trained(args: argparse.Namespace, overrides: dict[str, Any]) -> tuple[str, dict | None]:
    """A pipeline stage's key, and the finished run's metrics when its run folder was already
    trained for exactly this key (by `mpdsnn pipeline train`). Reads params.yaml and the code's
    bytes only: no torch, so such a stage returns in a fraction of a second."""
    from mpdsnn.batch import finished_with_key
    from mpdsnn.runfolder.fingerprint import code_hash, stage_key
    from mpdsnn.runfolder.io import read_yaml

    rest = {k: v for k, v in overrides.items() if k not in ("dataset", "method", "seed")}
    key = stage_key(read_yaml(args.params), overrides["dataset"], overrides["method"],
                    overrides["seed"], rest, code_hash())
    done = finished_with_key(Path(args.out), key) if args.resume == "auto" else None
    return key, done


def cmd_train(args: argparse.Namespace) -> int:
    overrides = _train_overrides(args)
    key = None
    if args.params:
        missing = [f for f in ("dataset", "method", "seed") if f not in overrides]
        if missing:
            raise UserError(f"--params needs --{', --'.join(missing)} (the stage's matrix values)")
        key, done = _already_trained(args, overrides)
        if done is not None:
            log.info("%s: already finished for these params and this code, nothing to train", args.out)
            print(json.dumps({k: done.get(k) for k in ("best_test_acc", "last_test_acc", "train_seconds")}))
            return 0
    from mpdsnn.config import build_config, config_from_params
    from mpdsnn.train import train

    if args.params:
        rest = {k: v for k, v in overrides.items() if k not in ("dataset", "method", "seed")}
        config = config_from_params(args.params, overrides["dataset"], overrides["method"],
                                    overrides["seed"], rest)
    else:
        config = build_config(args.config, overrides)
    metrics = train(config, Path(args.out), resume=args.resume, stage_key=key)
    if os.environ.get("RANK", "0") == "0":  # under torchrun: one line, not one per process
        print(json.dumps({k: metrics[k] for k in ("best_test_acc", "last_test_acc", "train_seconds")}))
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    from mpdsnn.config import describe_recipe

    print(describe_recipe(args.params, args.dataset, args.method, args.seed), end="")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Fetch or read a dataset, verify it and build its caches; write a small summary whose
    content changes exactly when the data does (the DVC train stages depend on it)."""
    from mpdsnn.config import build_config, config_from_params
    from mpdsnn.data import dataset_info, load_dataset
    from mpdsnn.runfolder import write_json

    flags = {k: v for k, v in {"data_root": args.root, "mirror": args.mirror, "T": args.T,
                               "seed": args.seed}.items() if v is not None}
    if args.no_download:
        flags["download"] = False
    if args.option:
        flags["dataset_options"] = dict(args.option)
    if args.params:  # the pipelines: the same data settings the train stages will use
        config = config_from_params(args.params, args.dataset, "vanilla", flags.pop("seed", 0), flags)
    else:
        config = build_config(None, {"dataset": args.dataset, **flags})
    T = config.T or dataset_info(args.dataset).default_T
    splits = load_dataset(args.dataset, config.data_config(T, augment=False))
    summary = {"dataset": args.dataset, "fingerprint": splits.fingerprint, "train": len(splits.train),
               "val": len(splits.val) if splits.val is not None else 0, "test": len(splits.test),
               "notes": splits.notes}
    if args.out:
        write_json(Path(args.out), summary)
    print(json.dumps(summary, default=str))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mpdsnn.evaluate import evaluate_run

    print(json.dumps(evaluate_run(Path(args.run_dir), device=args.device), indent=2))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from mpdsnn.data import dataset_info, list_datasets
    from mpdsnn.methods import list_methods, method_summary
    from mpdsnn.models import list_models

    print("methods:")
    for name in list_methods():
        print(f"  {name:10s} {method_summary(name)}")
    print("datasets:")
    for name in list_datasets():
        info = dataset_info(name)
        print(f"  {name:12s} {info.kind:7s} {'x'.join(map(str, info.input_shape)):9s} "
              f"{info.num_classes:3d} classes  T={info.default_T:<3d} {info.description}")
    print("models:")
    for name in list_models():
        print(f"  {name}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Tables, the paper's figures, published-vs-reproduced and the claims, from run folders."""
    from mpdsnn.report import build_report
    from mpdsnn.runfolder.reader import read_runs
    from mpdsnn.verdicts import (
        batch_statistics_markdown, claims_markdown, claims_report, compare_published, published_markdown,
    )

    roots = [Path(r) for r in args.runs]
    tables = read_runs(roots)  # once: the tables, figures and verdicts see the same runs
    runs = tables.finished
    claims = claims_report(runs, tables.last_layers, tables.last_timesteps)
    sections = [("Published vs reproduced", published_markdown(compare_published(runs))),
                ("The paper's claims, checked", claims_markdown(claims.results, claims.notes)),
                ("Running thresholds against batch statistics", batch_statistics_markdown(runs))]
    command = "mpdsnn report " + " ".join(args.runs) + f" --out {args.out}"
    report = build_report(tables, roots, Path(args.out), extra_sections=sections, command=command,
                          html_plots=args.html_plots)
    print(f"report written to {report.readme} and {report.index_html}")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    """The verdicts, the published comparison and, with ``--plan``, the seeds each claim would
    need; 0 whatever the verdicts (they are information)."""
    from mpdsnn.runfolder.reader import read_runs
    from mpdsnn.verdicts import (
        batch_statistics_markdown, claims_markdown, claims_report, compare_published, plan_markdown,
        published_markdown,
    )
    from mpdsnn.verdicts.claims import ACCURACY_LABELS
    from mpdsnn.verdicts.stats import STATS_BACKEND

    tables = read_runs(args.runs)
    runs = tables.finished
    report = claims_report(runs, tables.last_layers, tables.last_timesteps, dataset=args.dataset,
                           accuracy=args.accuracy)
    datasets = {args.dataset} if args.dataset else set(runs["dataset"])
    shown = runs[runs["dataset"].isin(datasets)]
    published = compare_published(runs)
    published = published[published["dataset"].isin(datasets)].reset_index(drop=True)
    print(claims_markdown(report.results, report.notes))
    if args.plan:
        print(plan_markdown(report.results, shown["seed"].tolist()))
    print(batch_statistics_markdown(shown))
    print(published_markdown(published))
    if tables.skipped:
        print("## Folders skipped (not used by any claim)\n")
        print("\n".join(f"- `{s.path}`: {s.reason}" for s in tables.skipped) + "\n")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "stats_backend": STATS_BACKEND,
            "accuracy": ACCURACY_LABELS[args.accuracy],
            "claims": [r.to_dict() for r in report.results],
            "pooling": report.notes,
            "skipped": [str(s) for s in tables.skipped],
            "published": json.loads(published.to_json(orient="records")),
        }, indent=2))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    """Every pipeline's dvc.yaml from one template (mpdsnn/pipeline.py)."""
    from mpdsnn.pipeline import new_pipeline, render_all

    if args.action == "train":
        from mpdsnn.batch import train_all

        params = Path(args.params)
        if not params.is_file():
            raise UserError(f"{params} not found; run from a pipeline's folder or pass --params")
        failed = train_all(params, args.jobs)
        if failed:
            raise UserError(f"{failed} run(s) failed (named above); `dvc repro` would retrain them")
        return 0
    repo = Path(args.repo).resolve()
    if not (repo / "params.yaml").is_file() or not (repo / "pipelines").is_dir():
        raise UserError(f"{repo} is not the mpdsnn repository (no params.yaml and pipelines/); "
                        "run from its root or pass --repo")
    if args.action == "new":
        if not args.name or not args.dataset:
            raise UserError("mpdsnn pipeline new NAME --dataset DATASET [--methods a,b]")
        folder = new_pipeline(repo, args.name, args.dataset, args.methods.split(","))
        print(f"wrote {folder / 'params.yaml'} and {folder / 'dvc.yaml'}; edit params.yaml, then "
              "`mpdsnn pipeline render`")
        return 0
    stale = render_all(repo, check=args.check)
    for path in stale:
        print(f"{'differs from the template' if args.check else 'rewrote'}: {path.relative_to(repo)}")
    if args.check and stale:
        print("error: run `mpdsnn pipeline render` and commit the result", file=sys.stderr)
        return 1
    return 0


def cmd_plots(args: argparse.Namespace) -> int:
    """Offline Vega-Lite: render a spec (e.g. from `dvc plots diff --show-vega`), or write the
    templates `dvc plots` uses (by_method.json, offline.html)."""
    from mpdsnn.report import vega

    if args.action == "dvc-templates":
        written = list(vega.write_dvc_templates(Path(args.target)).values())
    else:
        if not args.out_dir:
            raise UserError("render-vega needs SPEC.json and an output folder: "
                            "mpdsnn plots render-vega SPEC.json OUT_DIR")
        spec_path = Path(args.target)
        try:
            spec = json.loads(spec_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read a Vega-Lite spec from {spec_path} ({err}); pass a JSON "
                            "file, e.g. from `dvc plots diff --targets NAME --show-vega > spec.json`")
        written = list(vega.render(spec, Path(args.out_dir), stem=spec_path.stem, html=True).values())
    for path in written:
        print(path)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from mpdsnn.bench import bench

    return bench(args.sizes, args.out, [lv for lv in args.levels.split(",") if lv], args.threads,
                 not args.no_libraries)


def cmd_ui(args: argparse.Namespace) -> int:
    from mpdsnn.tracking_ui import open_ui

    return open_ui(args.uri, host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="mpdsnn", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one method on one dataset into a run folder")
    p.add_argument("--config", type=Path, help="YAML file of config keys (flags override it)")
    p.add_argument("--params", type=Path, help="a DVC params.yaml: train < datasets.<dataset> < "
                   "method card < method_options.<method>.recipe (what the pipelines use; "
                   "`mpdsnn recipe` prints it)")
    p.add_argument("--method", help=_names("method", "training method; `mpdsnn list` describes each; "))
    p.add_argument("--dataset", help=_names("dataset"))
    p.add_argument("--model", help=_names("model", "", default="the dataset's own model"))
    p.add_argument("--seed", type=int, help=_default("seed", "training seed"))
    p.add_argument("--epochs", type=int, help=_default("epochs", "training epochs"))
    p.add_argument("--T", type=int, help="timesteps (default: the dataset's)")
    p.add_argument("--lr", type=float, help=_default("lr", "peak learning rate of the cosine schedule"))
    p.add_argument("--batch-size", type=int, help=_default("batch_size", "samples per batch"))
    p.add_argument("--device", help=_default("device", "auto (cuda when available), cpu or cuda"))
    p.add_argument("--limit-batches", type=int, help="smoke runs: batches per epoch (default: all)")
    p.add_argument("--checkpoint-dir", help="where resume checkpoints go (default OUT/checkpoint)")
    p.add_argument("--mirror", help="a local copy of the dataset to read instead of downloading")
    p.add_argument("--set", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="any config key, e.g. --set weight_decay=5e-4 (repeatable)")
    p.add_argument("--method-option", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="a method option, e.g. --method-option fc=1.2 (repeatable)")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p.add_argument("--out", required=True, help="the run folder to write")
    p.add_argument("--resume", action="store_const", const="strict", default=None,
                   help="continue from the checkpoint; refuse if the config differs")
    p.add_argument("--resume-if-compatible", dest="resume", action="store_const", const="auto",
                   help="continue from a checkpoint of the same config, else start afresh (pipelines)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("prepare", help="fetch (or read a mirror of) a dataset, verify and cache it")
    p.add_argument("--dataset", required=True, help=_names("dataset", default=""))
    p.add_argument("--params", type=Path, help="a DVC params.yaml: use its data settings")
    p.add_argument("--root", help="cache and download folder (default data)")
    p.add_argument("--mirror", help="a local copy to read instead of downloading")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    p.add_argument("--T", type=int, help="timesteps to cache frames for (event data)")
    p.add_argument("--seed", type=int, help="seed of any split the dataset makes (default 0)")
    p.add_argument("--option", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="a dataset option, e.g. --option size=8 (repeatable)")
    p.add_argument("--out", help="write the summary JSON here (default: print it only)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("evaluate", help="re-evaluate a finished run folder on its test set")
    p.add_argument("run_dir", help="a finished run folder (holds config.yaml and the best checkpoint)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recipe", help="print a pipeline's resolved recipe for one method, with sources")
    p.add_argument("--params", type=Path, required=True, help="a DVC params.yaml")
    p.add_argument("--dataset", required=True, help=_names("dataset", default=""))
    p.add_argument("--method", required=True, help=_names("method", default=""))
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.set_defaults(func=cmd_recipe)

    p = sub.add_parser("list", help="list methods, datasets and models")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("report", help="tables, figures, published-vs-reproduced and claims from run folders")
    p.add_argument("runs", nargs="+", help="folders holding run folders (searched recursively)")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--html-plots", action="store_true", help="also write interactive HTML charts (~1 MB)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("claims", help="check the paper's claims and compare with published numbers")
    p.add_argument("runs", nargs="+", type=Path, help="run folders or folders above them")
    p.add_argument("--dataset", help="only this dataset (default: every dataset found)")
    p.add_argument("--accuracy", choices=["best", "last", "val"], default="best",
                   help="test accuracy compared by C3/C4 (default: best)")
    p.add_argument("--plan", action="store_true",
                   help="also print the seeds each claim needs for the paper's effect and the "
                        "params change that adds them")
    p.add_argument("--json", type=Path, dest="json_out", help="also write the results here as JSON")
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("pipeline", help="render every pipeline's dvc.yaml from one template, or start a new pipeline")
    p.add_argument("action", choices=["render", "new", "train"],
                   help="render: every dvc.yaml from the template; new: a pipeline folder; "
                        "train: the whole train matrix in --jobs long-lived processes, before "
                        "`dvc repro` (which then finds the runs done)")
    p.add_argument("name", nargs="?", help="new: the pipeline's name (pipelines/NAME)")
    p.add_argument("--dataset", help=_names("dataset", "new: the dataset it trains on; ", default=""))
    p.add_argument("--methods", default="ds-atgo,vanilla", help="new: methods, comma-separated (default ds-atgo,vanilla)")
    p.add_argument("--check", action="store_true", help="render: only compare; exit 1 if any differs")
    p.add_argument("--repo", default=".", help="the repository root (default: .)")
    p.add_argument("--params", default="params.yaml", help="train: the pipeline's params.yaml (default: ./params.yaml)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="train: runs at a time, one process each (default: the CPU count)")
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("plots", help="offline Vega-Lite: render a spec, or write DVC's plot templates")
    p.add_argument("action", choices=["render-vega", "dvc-templates"],
                   help="render-vega: a spec to PNG and HTML; dvc-templates: write DVC's templates")
    p.add_argument("target", help="render-vega: SPEC.json; dvc-templates: the folder (e.g. .dvc/plots)")
    p.add_argument("out_dir", nargs="?", help="render-vega: where the PNG and HTML go")
    p.set_defaults(func=cmd_plots)

    p = sub.add_parser("ui", help="open the MLflow UI on this project's run store")
    p.add_argument("--uri", help="tracking URI (default: MLFLOW_TRACKING_URI or <project>/mlflow.db)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: local only)")
    p.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("bench", help="time and memory of neurons and models against SpikingJelly/snnTorch",
                       description="Time and activation memory of our neurons (reference, fused and "
                                   "compiled), SpikingJelly's and snnTorch's, and of one training step "
                                   "per method; with --levels pipeline, where one train stage's time "
                                   "goes; writes bench.csv and bench.json.")
    p.add_argument("--sizes", choices=["tiny", "cpu", "gpu"], default="tiny",
                   help="tiny: seconds, checks the harness; cpu: the CPU measurement; gpu: "
                        "published shapes on one CUDA device (default: tiny)")
    p.add_argument("--out", default=None, help="output folder (default: bench-results/SIZES)")
    p.add_argument("--levels", default="neuron,model",
                   help="comma-separated: neuron, model, pipeline (default: neuron,model); "
                        "pipeline runs one real train stage of the default pipeline and splits its "
                        "wall time into start-up, data, training, evaluation, probes, teardown")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads(N) (default: torch's own choice)")
    p.add_argument("--no-libraries", action="store_true", help="leave SpikingJelly and snnTorch out")
    p.set_defaults(func=cmd_bench)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (it may be swapped, e.g. by pytest)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _configure_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    if sys.stderr.isatty():
        from rich.logging import RichHandler
        handler: logging.Handler = RichHandler(show_path=False, markup=False)
        fmt = "%(message)s"
    else:
        handler = _StderrHandler()
        fmt = "%(asctime)s %(levelname)s %(message)s"
    handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in ("mlflow", "alembic", "urllib3", "git", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except UserError as exc:
        print("error: " + " ".join(str(exc).splitlines()), file=sys.stderr)  # one line, always
        return 143 if "stopped by signal" in str(exc) else 2
    except KeyboardInterrupt:
        print("error: interrupted; run the same command with --resume to continue from the last "
              "checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
