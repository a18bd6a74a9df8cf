"""Bad input from issue 13 (items 7, 9, 10): each gets one line naming the problem, exit 2,
no traceback, and nothing trains. Every case is the command or params.yaml of the issue."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpdsnn.cli import main
from mpdsnn.config import build_config, config_from_params
from mpdsnn.errors import UserError

TRAIN = ["train", "--method", "ds-atgo", "--dataset", "digits", "--epochs", "1",
         "--limit-batches", "1", "--no-tracking"]


def run_cli(argv: list[str]) -> int:
    """``mpdsnn ARGV`` in-process; argparse's errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _one_line_error(capsys, argv: list[str], out: Path) -> str:
    code = run_cli([*argv, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert not out.exists() or not (out / "metrics.json").exists()
    return err


@pytest.mark.parametrize("flags, expected", [
    (["--method-option", "fc=.nan"], "method_options.fc must be a finite number, got nan"),
    (["--method-option", "min_theta=.nan"], "method_options.min_theta must be a finite number"),
    (["--method-option", "fc=.inf"], "method_options.fc must be a finite number, got inf"),
    (["--set", "lr=.nan"], "lr must be a finite number, got nan"),
    (["--lr", "inf"], "lr must be a finite number, got inf"),
    (["--set", "grad_clip=-.inf"], "grad_clip must be a finite number"),
])
def test_nan_and_inf_options_are_refused(capsys, tmp_path, flags, expected):
    assert expected in _one_line_error(capsys, [*TRAIN, *flags], tmp_path / "run")


@pytest.mark.parametrize("flags, expected", [
    (["--set", "lr=[1"], "argument --set: lr='[1'"),
    (["--set", "lr={a: [1"], "argument --set: lr='{a: [1'"),
    (["--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    (["--set", "model_options={width: -3}"], "model option width must be a positive number"),
    (["--set", "model_options={width: 2.5}"], "model option width of model 'convnet' must be a positive integer"),
    # found by tests/test_property_inputs.py: each was a traceback
    (["--T", "1000000000"], "T 1000000000 is above 100000"),  # was killed for memory while building
    (["--T", "1", "--batch-size", "1"], "T 1 with batch_size 1 gives BatchNorm one value per channel"),
    (["--set", "method_options=nan", "--method-option", "fc=1"], "--set method_options=nan is not a mapping"),
])
def test_bad_flags_give_one_line(capsys, tmp_path, flags, expected):
    assert expected in _one_line_error(capsys, [*TRAIN, *flags], tmp_path / "run")


def test_a_yaml_syntax_error_is_one_line_with_its_place(capsys, tmp_path):
    """PyYAML's message spans four lines; found by tests/test_property_inputs.py."""
    config = tmp_path / "config.yaml"
    config.write_text("epochs: 3\n:\n")
    err = _one_line_error(capsys, [*TRAIN, "--config", str(config)], tmp_path / "run")
    assert f"config file {config} is not valid YAML:" in err and "(line 2, column 1)" in err


def test_config_that_is_a_folder_or_binary_gives_one_line(capsys, tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    err = _one_line_error(capsys, [*TRAIN, "--config", str(tmp_path)], tmp_path / "r1")
    assert f"config file {tmp_path} is a folder" in err
    err = _one_line_error(capsys, [*TRAIN, "--config", str(binary)], tmp_path / "r2")
    assert f"config file {binary} is not text" in err


@pytest.mark.parametrize("text, expected", [
    ("train: 5\ndatasets: {digits: {}}\n", "train must be a mapping of key: value, got 5"),
    ("datasets:\n  digits: [T, 4]\n", "datasets.digits must be a mapping of key: value, got ['T', 4]"),
    ("datasets: [digits]\n", "datasets must be a mapping of key: value, got ['digits']"),
    ("datasets: {digits: {}}\nmethod_options: [a]\n", "method_options must be a mapping"),
    # A string used to be read as its characters: "unknown config key(s) a, b, c".
    ("datasets:\n  digits: abc\n", "datasets.digits must be a mapping of key: value, got 'abc'"),
    ("datasets: {digits: {model_options: {width: -3}}}\n", "model option width must be a positive"),
    ("train: {lr: .nan}\ndatasets: {digits: {}}\n", "lr must be a finite number, got nan"),
    ("datasets: {digits: {}}\nmethod_options: {ds-atgo: {fc: .nan}}\n", "method_options.fc must be a finite"),
])
def test_malformed_params_files_give_one_line(capsys, tmp_path, text, expected):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    argv = ["train", "--params", str(params), "--dataset", "digits", "--method", "ds-atgo",
            "--seed", "0", "--no-tracking"]
    assert expected in _one_line_error(capsys, argv, tmp_path / "run")


@pytest.mark.parametrize("text, expected", [
    ('methods: ["vanilla;echo INJECTED >FILE;#"]\n', "method 'vanilla;echo INJECTED >FILE;#' is not a safe name"),
    ("method_options: {\"vanilla'; touch x; '\": {}}\n", "is not a safe name"),
    ("datasets_run: [digits, \"$(touch x)\"]\n", "dataset '$(touch x)' is not a safe name"),
    ("pipeline: ../../etc\n", "pipeline '../../etc' is not a safe name"),
    ("method_options: {vanilla: {\"tau; rm\": 1}}\n", "key 'tau; rm' in method_options.vanilla"),
    ("methods: [vanilla, --resume]\n", "method '--resume' is not a safe name"),
])
def test_unsafe_names_in_params_are_refused_before_use(tmp_path, text, expected):
    params = tmp_path / "params.yaml"
    params.write_text("datasets: {digits: {}}\n" + text)
    with pytest.raises(UserError) as caught:
        config_from_params(params, "digits", "vanilla", 0)
    assert expected in str(caught.value)


def test_the_shipped_params_files_pass_the_layout_check():
    import yaml

    repo = Path(__file__).resolve().parents[1]
    for path in [repo / "params.yaml", *sorted(repo.glob("pipelines/*/params.yaml"))]:
        params = yaml.safe_load(path.read_text())
        config = config_from_params(path, params["datasets_run"][0], params["methods"][0], 0)
        assert config.method == params["methods"][0]


def test_valid_numbers_still_pass():
    config = build_config(None, {"lr": 0.05, "method_options": {"fc": 1.2},
                                 "model_options": {"width": 8}, "grad_clip": 1.0})
    assert (config.lr, config.method_options, config.model_options) == (0.05, {"fc": 1.2}, {"width": 8})


# ---------------------------------------------------------------- scripts/unpack-shared-data

def _unpack(archive: Path, mirrors: Path):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    return subprocess.run(["bash", str(repo / "scripts" / "unpack-shared-data"), str(archive)],
                          env={**os.environ, "PYTHON": sys.executable, "MIRRORS": str(mirrors)},
                          capture_output=True, text=True, timeout=60)


def _archive(path: Path) -> bytes:
    import io
    import os
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"cifar/a.txt": b"hello\n", "cifar/b.bin": os.urandom(200_000)}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_a_damaged_archive_is_one_line_exit_2_and_leaves_nothing(tmp_path, damage):
    data = _archive(tmp_path / "cifar.tar.gz")
    broken = tmp_path / "in" / "cifar.tar.gz"
    broken.parent.mkdir()
    if damage == "truncated":  # a copy that broke off
        broken.write_bytes(data[: len(data) // 2])
    else:
        middle = len(data) // 2
        broken.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    mirrors = tmp_path / "mirrors"
    result = _unpack(broken, mirrors)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()
    assert len(last) == 1 and "Traceback" not in result.stderr, result.stderr
    assert last[0].startswith(f"error: {broken}") and "copy it again and rerun" in last[0]
    assert list(mirrors.iterdir()) == []  # neither a mirror nor a half-unpacked folder
