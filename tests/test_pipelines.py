"""The benchmark pipelines (``pipelines/*/``): DVC reads each as prepare -> train (dataset x method
x seed) -> report; every section of each params.yaml is a valid training config whose methods and
model build; the paper-scale recipes are the published ones; and one batch of each paper-scale
train config runs through ``mpdsnn train --params`` on fixtures in the real data formats."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mpdsnn.config import config_from_params
from mpdsnn.data import dataset_info
from mpdsnn.methods import create_method
from mpdsnn.models import create_model
import data_formats as fmt

REPO = Path(__file__).resolve().parents[1]
PIPELINES = {p.parent.name: p.parent for p in sorted((REPO / "pipelines").glob("*/dvc.yaml"))}
PAPER_SCALE = ("cifar10", "cifar100", "cifar10-dvs", "dvs-gesture")
IMAGENET = ("imagenet",)  # DS-ATGO only: the one published ImageNet row
CPU = ("cifar10-cpu", "nmnist-cpu")
ABLATION = ["ds-atgo", "at", "tgo", "vanilla"]
BASELINES = ["fixed", "tet", "mpd-agl"]


def _params(name: str) -> dict:
    return yaml.safe_load((PIPELINES[name] / "params.yaml").read_text())


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"}


def test_the_seven_pipelines_exist():
    assert sorted(PIPELINES) == sorted(PAPER_SCALE + IMAGENET + CPU)
    for folder in PIPELINES.values():
        assert (folder / "params.yaml").is_file()


# ---------------------------------------------------------------- DVC reads them

@pytest.fixture(scope="module")
def dvc_dag(tmp_path_factory) -> tuple[set[str], set[tuple[str, str]]]:
    """``dvc dag --dot`` of a throwaway git + DVC repository holding the root's and every
    pipeline's dvc.yaml and params.yaml. DVC loads every dvc.yaml of a repository at once, so one
    call checks that each parses and that no two stages share an output. Returns nodes, edges."""
    root = tmp_path_factory.mktemp("repo")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
        for pipeline, folder in PIPELINES.items():
            (root / "pipelines" / pipeline).mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / name, root / "pipelines" / pipeline / name)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=_env())
    result = subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot"], cwd=root, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    nodes = set(re.findall(r'^"([^"]+)";$', result.stdout, re.M))
    edges = set(re.findall(r'^"([^"]+)" -> "([^"]+)";$', result.stdout, re.M))
    return nodes, edges


@pytest.mark.parametrize("name", sorted(PAPER_SCALE + CPU))
def test_dvc_dag_is_prepare_train_matrix_report(dvc_dag, name):
    nodes, edges = dvc_dag
    prefix = f"pipelines/{name}/dvc.yaml:"
    mine = {n.removeprefix(prefix) for n in nodes if n.startswith(prefix)}
    edges = {(a.removeprefix(prefix), b.removeprefix(prefix)) for a, b in edges
             if a.startswith(prefix) or b.startswith(prefix)}
    params = _params(name)
    matrix = list(itertools.product(params["datasets_run"], params["methods"], params["seeds"]))
    trains = {f"train@{d}-{m}-{s}" for d, m, s in matrix}
    prepares = {f"prepare@{d}" for d in params["datasets_run"]}
    assert mine == prepares | trains | {"report"}
    assert edges == {(f"prepare@{d}", f"train@{d}-{m}-{s}") for d, m, s in matrix} | \
        {(f"train@{d}-{m}-{s}", "report") for d, m, s in matrix}


@pytest.mark.parametrize("name", sorted(PAPER_SCALE + CPU))
def test_stages_use_the_pipeline_commands(name):
    stages = yaml.safe_load((PIPELINES[name] / "dvc.yaml").read_text())["stages"]
    assert "--resume-if-compatible" in stages["train"]["cmd"]
    assert "--resume " not in stages["train"]["cmd"] + " "
    assert stages["report"]["cmd"] == "mpdsnn report runs --out reports"
    assert stages["report"]["outs"] == [{"reports": {"cache": False}}]
    outs = {next(iter(o)): next(iter(o.values())) for o in stages["train"]["outs"]}
    assert outs["runs/${pipeline}/${item.dataset}/${item.method}/seed${item.seed}"] == {"persist": True}
    assert outs["checkpoints/${pipeline}/${item.dataset}/${item.method}/seed${item.seed}"] == \
        {"persist": True, "cache": False}
    assert "../../baselines" in stages["train"]["deps"]


# ---------------------------------------------------------------- params are valid configs

@pytest.mark.parametrize("name", sorted(PAPER_SCALE + IMAGENET + CPU))
def test_every_params_section_is_a_valid_config(name):
    path = PIPELINES[name] / "params.yaml"
    params = _params(name)
    assert params["pipeline"] == name
    assert set(params["methods"]) <= set(params["method_options"]), "a method without options block"
    for dataset in params["datasets_run"]:
        mirror = params["datasets"][dataset].get("mirror", "absent")
        assert mirror is None or mirror.startswith("../../data/"), f"{dataset}: mirror {mirror!r}"
        assert not Path(params["train"]["data_root"]).is_absolute()
        info = dataset_info(dataset)
        for method, options in params["method_options"].items():
            config = config_from_params(path, dataset, method, params["seeds"][0])
            assert config.method_options == options
            built = create_method(method, **config.method_options)
            assert built.name == method
        model = create_model(config.model or info.default_model, built, T=config.T,
                             num_classes=info.num_classes, in_channels=info.input_shape[0],
                             **{**info.model_options, **config.model_options})
        assert sum(p.numel() for p in model.parameters()) > 10_000


def test_paper_scale_recipes_are_the_published_ones():
    """SPEC section 6: the official CIFAR recipe; VGGSNN, T = 10, weight decay 5e-4 on CIFAR10-DVS."""
    for name in ("cifar10", "cifar100"):
        c = config_from_params(PIPELINES[name] / "params.yaml", name, "ds-atgo", 2025)
        assert (c.model, c.T, c.optimizer, c.lr, c.momentum, c.weight_decay, c.schedule, c.epochs,
                c.batch_size, c.label_smoothing) == ("resnet19", 2, "sgd", 0.1, 0.9, 1e-4, "cosine",
                                                     400, 100, 0.1)
        assert 2025 in _params(name)["seeds"] and len(_params(name)["seeds"]) >= 3
    c = config_from_params(PIPELINES["cifar10-dvs"] / "params.yaml", "cifar10-dvs", "ds-atgo", 2025)
    assert (c.model, c.T, c.weight_decay, c.dataset_options) == ("vggsnn", 10, 5e-4, {"split": "tet"})
    for name in PAPER_SCALE:
        params = _params(name)
        assert set(ABLATION + BASELINES) <= set(params["methods"])
        # fp32 as every official code; bf16 is the labelled fast profile (-S train.amp=true)
        assert (params["train"]["device"], params["train"]["amp"]) == ("auto", False)
        assert params["recipe_cards"] == "paper"
        assert params["train"]["num_workers"] >= 4
        assert params["method_options"]["ds-atgo"] == {"fc": 1.0, "tgo_rule": "paper"}
    imagenet = config_from_params(PIPELINES["imagenet"] / "params.yaml", "imagenet", "ds-atgo", 2025)
    assert (imagenet.model, imagenet.T, imagenet.amp, imagenet.label_smoothing) == \
        ("resnet18", 4, False, 0.1)
    for name in CPU:
        assert _params(name)["methods"] == ["ds-atgo", "vanilla", "fixed"]
        assert len(_params(name)["seeds"]) == 2


# ---------------------------------------------------------------- one batch of each paper recipe

def _fixture(dataset: str, folder: Path) -> Path:
    from mpdsnn.data.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES

    if dataset == "cifar10":
        fmt.write_image_folder(folder, CIFAR10_CLASSES, per_class=2)
    elif dataset == "cifar100":
        fmt.write_image_folder(folder, CIFAR100_CLASSES, per_class=1)
    elif dataset == "cifar10-dvs":
        fmt.write_cifar10dvs(folder, per_class=3)
    elif dataset == "dvs-gesture":
        fmt.write_gesture(folder, users=[1], split="ibmGestureTrain")
        fmt.write_gesture(folder, users=[24], split="ibmGestureTest")
    elif dataset == "imagenet":
        fmt.write_image_folder(folder, ["n01440764", "n01443537"], per_class=2, splits=("train", "val"))
    return folder


# Runs the CLI and, at exit, writes the source files of every mpdsnn/baselines module it loaded.
_RUN_AND_LIST_MODULES = """
import atexit, json, sys, runpy
target = sys.argv[1]
def dump():
    files = sorted({m.__file__ for n, m in list(sys.modules.items())
                    if n.split('.')[0] in ('mpdsnn', 'baselines') and getattr(m, '__file__', None)})
    open(target, 'w').write(json.dumps(files))
atexit.register(dump)
sys.argv = ['mpdsnn'] + sys.argv[2:]
runpy.run_module('mpdsnn.cli', run_name='__main__')
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_SCALE + IMAGENET)
def test_one_batch_of_the_paper_recipe_runs(tmp_path, name):
    params = _params(name)
    dataset = params["datasets_run"][0]
    mirror = _fixture(dataset, tmp_path / "mirror")
    out, modules = tmp_path / "run", tmp_path / "modules.json"
    args = ["train", "--params", str(PIPELINES[name] / "params.yaml"), "--dataset", dataset,
            "--method", "ds-atgo", "--seed", "0", "--limit-batches", "1", "--set", "epochs=1",
            "--set", f"mirror={mirror}", "--set", f"data_root={tmp_path / 'data'}",
            "--set", "model_options={width: 0.0625}", "--set", "num_workers=0",
            *(["--set", "dataset_options={expect_classes: 2}"] if dataset == "imagenet" else []),
            "--device", "cpu", "--no-tracking", "--out", str(out),
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--resume-if-compatible"]
    result = subprocess.run([sys.executable, "-c", _RUN_AND_LIST_MODULES, str(modules), *args],
                            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["status"], metrics["dataset"], metrics["method"], metrics["epochs"]) == \
        ("finished", dataset, "ds-atgo", 1)
    assert (metrics["model"], metrics["T"]) == (params["datasets"][dataset]["model"],
                                                params["datasets"][dataset]["T"])
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["weight_decay"] == params["train"]["weight_decay"]  # the params drove training
    assert config["label_smoothing"] == 0.1  # DS-ATGO's card: its code's smoothing
    assert config["amp"] is False

    # Every module training loaded is a dependency of the train stages (else a code change would
    # leave stale runs), and the report/verdict code is not (else editing it would retrain).
    stage = yaml.safe_load((PIPELINES[name] / "dvc.yaml").read_text())["stages"]["train"]
    deps = [(PIPELINES[name] / d).resolve() for d in stage["deps"] if d.startswith("../../")]
    loaded = [Path(f).resolve() for f in json.loads(modules.read_text())]
    assert loaded, "no module list written"
    uncovered = [str(f) for f in loaded if not any(f == d or d in f.parents for d in deps)]
    assert uncovered == []
    assert not any(d.name in ("report", "verdicts") for d in deps)


# ---------------------------------------------------------------- scripts/unpack-shared-data

def _tar(path: Path, members: dict[str, bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _unpack(*args: Path, mirrors: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / "unpack-shared-data"), *map(str, args)],
                          env={**_env(), "PYTHON": sys.executable, "MIRRORS": str(mirrors)},
                          capture_output=True, text=True, timeout=60)


def test_unpack_shared_data_layout_and_idempotence(tmp_path):
    """nmnist-small.tar.gz holds nmnist-small/...: unpacked as it is; cifar10-jpeg.tar.gz holds
    train/ and test/: unpacked into a new cifar10-jpeg/. A second run keeps both."""
    archives = tmp_path / "archives"
    archives.mkdir()
    _tar(archives / "nmnist-small.tar.gz", {"nmnist-small/Train/5/00001.bin": b"\x12\x10\x80\x03\x7d"})
    _tar(archives / "cifar10-jpeg.tar.gz", {"train/cat/0001.jpg": b"jpg", "test/cat/0002.jpg": b"x"})
    mirrors = tmp_path / "mirrors"
    first = _unpack(archives, mirrors=mirrors)
    assert first.returncode == 0, first.stderr
    assert (mirrors / "nmnist-small" / "Train" / "5" / "00001.bin").read_bytes() == b"\x12\x10\x80\x03\x7d"
    assert (mirrors / "cifar10-jpeg" / "train" / "cat" / "0001.jpg").read_bytes() == b"jpg"
    assert sorted(p.name for p in mirrors.iterdir()) == ["cifar10-jpeg", "nmnist-small"]
    (mirrors / "cifar10-jpeg" / "mine.txt").write_text("kept")
    second = _unpack(archives / "cifar10-jpeg.tar.gz", mirrors=mirrors)
    assert second.returncode == 0 and "exists: kept" in second.stdout
    assert (mirrors / "cifar10-jpeg" / "mine.txt").read_text() == "kept"


def test_unpack_shared_data_refuses_path_traversal_and_bad_arguments(tmp_path):
    evil = _tar(tmp_path / "evil.tar.gz", {"ok/a.txt": b"a", "../escaped.txt": b"x"})
    mirrors = tmp_path / "m" / "mirrors"
    result = _unpack(evil, mirrors=mirrors)
    assert result.returncode != 0
    assert "'..' component" in result.stderr and "../escaped.txt" in result.stderr
    assert not (tmp_path / "m" / "escaped.txt").exists() and not (mirrors / "evil").exists()
    assert list(mirrors.iterdir()) == []  # no half-unpacked temporary folder left behind
    missing = _unpack(tmp_path / "nope.tar.gz", mirrors=mirrors)
    assert missing.returncode == 2 and "neither an archive nor a folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = _unpack(tmp_path / "empty", mirrors=mirrors)
    assert empty.returncode == 2 and "no *.tar.gz archive" in empty.stderr


# ---------------------------------------------------------------- recipe cards

SMOOTHING = {**dict.fromkeys(ABLATION, 0.1), "fixed": 0.0, "tet": 0.0, "mpd-agl": 0.0,
             "plif": 0.0, "ltmd": 0.0}


@pytest.mark.parametrize("name", PAPER_SCALE + IMAGENET)
def test_paper_pipelines_resolve_each_methods_card(name):
    """Shared < dataset < card: every card value reaches the config; label smoothing is each
    code's (0.1 for DS-ATGO and its ablations, 0 for the baselines whose code has none)."""
    from mpdsnn.methods import method_card

    params = _params(name)
    dataset = params["datasets_run"][0]
    shared = {**params["train"], **params["datasets"][dataset]}
    for method in params["method_options"]:
        card = method_card(method)
        c = config_from_params(PIPELINES[name] / "params.yaml", dataset, method, 0)
        assert c.label_smoothing == SMOOTHING[method], method
        assert c.amp is False
        expected = {**shared, **{k: v.value for k, v in card.train.items()},
                    **{k: v.value for k, v in card.datasets.get(dataset, {}).items()}}
        for key, value in expected.items():
            if key not in ("model", "model_options"):
                assert getattr(c, key) == value, (method, key)
        model = shared["model"]
        model = card.models[model].value if model in card.models else model
        assert c.model == model, method
        for key, cited in {**card.model_options.get("*", {}), **card.model_options.get(model, {})}.items():
            assert c.model_options[key] == cited.value, (method, key)


def test_cifar_cards_give_the_published_architectures_and_recipes():
    path = PIPELINES["cifar10"] / "params.yaml"
    got = {m: config_from_params(path, "cifar10", m, 0) for m in ("ds-atgo", "tet", "fixed", "mpd-agl")}
    assert {m: c.model for m, c in got.items()} == {"ds-atgo": "resnet19", "tet": "resnet19-std",
                                                    "fixed": "resnet19-std", "mpd-agl": "resnet19"}
    assert got["ds-atgo"].model_options == {"init": "kaiming-fan-out"}
    assert got["fixed"].model_options["sum_alpha"] == pytest.approx(2 ** -0.5)
    assert (got["mpd-agl"].epochs, got["ds-atgo"].epochs, got["tet"].epochs) == (150, 400, 400)
    dvs = config_from_params(PIPELINES["cifar10-dvs"] / "params.yaml", "cifar10-dvs", "tet", 0)
    assert (dvs.model, dvs.optimizer, dvs.lr, dvs.weight_decay, dvs.epochs, dvs.batch_size,
            dvs.model_options) == ("vggsnn", "adamw", 0.001, 0.0, 150, 128, {"init": "kaiming-fan-out"})


def test_override_beats_the_card_and_cards_can_be_switched_off(tmp_path):
    params = _params("cifar10")
    params["method_options"]["mpd-agl"] = {"vth": 0.5, "recipe": {"epochs": 400, "label_smoothing": 0.1,
                                                                  "model_options": {"init": "default"}}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    c = config_from_params(path, "cifar10", "mpd-agl", 0)
    assert (c.epochs, c.label_smoothing, c.model_options, c.method_options) == \
        (400, 0.1, {"init": "default"}, {"vth": 0.5})
    params["recipe_cards"] = "none"
    path.write_text(yaml.safe_dump(params))
    c = config_from_params(path, "cifar10", "tet", 0)
    assert (c.model, c.label_smoothing, c.model_options) == ("resnet19", 0.0, {})
    params["recipe_cards"] = "yes"
    path.write_text(yaml.safe_dump(params))
    from mpdsnn.errors import UserError
    with pytest.raises(UserError, match="recipe_cards must be one of paper, none; got 'yes'"):
        config_from_params(path, "cifar10", "tet", 0)


def test_pipelines_without_cards_keep_their_shared_recipe():
    """The embedded and CPU pipelines do not opt in: their committed runs' recipes are unchanged."""
    for path in (REPO / "params.yaml", PIPELINES["cifar10-cpu"] / "params.yaml"):
        params = yaml.safe_load(path.read_text())
        dataset = params["datasets_run"][0]
        c = config_from_params(path, dataset, "fixed", 0)
        assert "recipe_cards" not in params
        assert c.label_smoothing == params["train"]["label_smoothing"]
        assert c.model == params["datasets"][dataset].get("model")


def test_recipe_command_prints_the_resolved_recipe_with_sources():
    path = PIPELINES["cifar10"] / "params.yaml"
    result = subprocess.run([sys.executable, "-m", "mpdsnn.cli", "recipe", "--params", str(path),
                             "--dataset", "cifar10", "--method", "mpd-agl"],
                            env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    config = config_from_params(path, "cifar10", "mpd-agl", 0)
    for key in ("epochs", "label_smoothing", "model", "amp", "lr", "weight_decay", "T"):
        assert printed[key] == getattr(config, key), key
    assert printed["method_options"] == {"vth": 0.5, "alpha": 1.0, "init_tau": 0.2}
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines()}
    assert "card mpd-agl: Stay-Sane/MPD-AGL@61abbf3 base_config.py:22" in lines["epochs"]
    assert "card mpd-agl: Stay-Sane/MPD-AGL@61abbf3 main.py:34" in lines["label_smoothing"]
    assert f"{path}: train.amp" in lines["amp"]
    assert printed["neuron"]["firing"] == ">="


def test_published_rows_are_reproductions_only_on_the_paper_recipe(tmp_path):
    import pandas as pd

    from mpdsnn.verdicts.match import row_label

    config = config_from_params(PIPELINES["cifar10"] / "params.yaml", "cifar10", "ds-atgo", 0).to_dict()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    runs = pd.DataFrame({"path": [str(tmp_path)], "model": ["resnet19"], "T": [2]})
    assert row_label("ds-atgo", "cifar10", "resnet19", 2, runs) == "reproduction"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**config, "amp": True, "label_smoothing": 0.0}))
    assert row_label("ds-atgo", "cifar10", "resnet19", 2, runs) == \
        "reference (differs: label_smoothing=0.0 (0.1), amp=True (False))"
    assert row_label("tet", "cifar10", "resnet19", 2, runs.assign(path=str(tmp_path / "none"))) == \
        "reference (differs: model=resnet19 (resnet19-std))"


def test_rows_on_recipes_the_paper_does_not_give_are_references(tmp_path):
    import pandas as pd

    from mpdsnn.verdicts.match import row_label

    runs = pd.DataFrame({"path": [str(tmp_path / "none")], "model": ["vggsnn"], "T": [10]})
    assert row_label("ds-atgo", "cifar10-dvs", "vggsnn", 10, runs) == (
        "reference (not published: optimizer, lr, momentum, schedule, epochs, batch_size)")
    # TET's card sets its own optimiser, lr, epochs and batch: only what TET's code lacks remains
    assert row_label("tet", "cifar10-dvs", "vggsnn", 10, runs) == \
        "reference (not published: momentum, schedule)"


def test_imagenet_reads_an_image_folder_and_refuses_a_partial_copy(tmp_path):
    from mpdsnn.data import DataConfig, load_dataset
    from mpdsnn.errors import UserError

    fmt.write_image_folder(tmp_path, ["n01", "n02"], per_class=2, splits=("train", "val"))
    splits = load_dataset("imagenet", DataConfig(root=tmp_path, mirror=tmp_path, augment=False,
                                                 options={"expect_classes": 2}))
    x, y = splits.train[0]
    assert (tuple(x.shape), y, len(splits.train), len(splits.test)) == ((3, 224, 224), 0, 4, 4)
    with pytest.raises(UserError, match="has 2 class folders, expected 1000"):
        load_dataset("imagenet", DataConfig(root=tmp_path, mirror=tmp_path))
    with pytest.raises(UserError, match="ImageNet needs a local copy"):
        load_dataset("imagenet", DataConfig(root=tmp_path))


def test_published_table_keeps_variants_and_bf16_runs_apart(tmp_path):
    """tgo_rule=code runs get their own row beside the published number; bf16 runs are never
    averaged with fp32 ones, and only the fp32 default runs on the paper recipe reproduce it."""
    import pandas as pd

    from mpdsnn.verdicts.published import compare_published
    from mpdsnn.verdicts.published_data import PUBLISHED

    entry = next(e for e in PUBLISHED if (e.method, e.dataset) == ("ds-atgo", "cifar10"))
    config = config_from_params(PIPELINES["cifar10"] / "params.yaml", "cifar10", "ds-atgo", 0).to_dict()
    rows = []
    for i, (variant, amp, acc) in enumerate([("", False, 96.8), ("", False, 97.0), ("", True, 90.0),
                                             ("tgo_rule=code", False, 96.9)]):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        (folder / "config.yaml").write_text(yaml.safe_dump({**config, "amp": amp}))
        rows.append(dict(method="ds-atgo", variant=variant, dataset="cifar10", model="resnet19", T=2,
                         epochs=400, seed=i, best_test_acc=acc, last_test_acc=acc, path=str(folder)))
    table = compare_published(pd.DataFrame(rows), [entry]).set_index("method")
    assert table.loc["ds-atgo", ["n", "reproduced_mean", "label"]].tolist() == [2, 96.9, "reproduction"]
    assert table.loc["ds-atgo (bf16)", ["n", "label"]].tolist() == \
        [1, "reference (differs: amp=True (False))"]
    assert table.loc["ds-atgo (tgo_rule=code)", ["n", "label"]].tolist() == [1, "reproduction"]


# ---------------------------------------------------------------- one template for every dvc.yaml

def test_every_dvc_yaml_is_the_template_rendered_from_its_params(capsys):
    from mpdsnn.cli import main

    assert main(["pipeline", "render", "--check", "--repo", str(REPO)]) == 0, capsys.readouterr().out


def test_a_hand_edit_or_a_new_pipeline_is_caught_and_rendered(tmp_path, capsys):
    from mpdsnn.cli import main
    from mpdsnn.pipeline import training_dependencies
    from mpdsnn.runfolder.fingerprint import training_code_files

    repo = tmp_path / "repo"
    shutil.copytree(REPO / "pipelines", repo / "pipelines", ignore=shutil.ignore_patterns("reports", "runs"))
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, repo / name)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "pipelines/cifar10/dvc.yaml").write_text("stages: {}\n")
    assert main(["pipeline", "render", "--check", "--repo", str(repo)]) == 1
    assert "pipelines/cifar10/dvc.yaml" in capsys.readouterr().out
    assert main(["pipeline", "new", "tiny", "--dataset", "digits", "--repo", str(repo)]) == 0
    stages = yaml.safe_load((repo / "pipelines/tiny/dvc.yaml").read_text())["stages"]
    assert "always_changed" not in stages["prepare"]["do"]  # embedded data: repro stays a no-op
    assert (repo / "pipelines/tiny/.dvc/config").is_file()  # a DVC project of its own
    params = yaml.safe_load((repo / "pipelines/tiny/params.yaml").read_text())
    assert params["methods"] == ["ds-atgo", "vanilla"] and params["datasets_run"] == ["digits"]
    assert main(["pipeline", "new", "tiny", "--dataset", "digits", "--repo", str(repo)]) == 2
    # the train deps cover exactly the files the recipe fingerprint hashes
    deps = [REPO / d for d in training_dependencies()]
    covered = {f for f in training_code_files() if any(f == d or d in f.parents for d in deps)}
    assert covered == set(training_code_files())
    assert not any(d.name in ("report", "verdicts", "bench") for d in deps)
