"""The command line explains itself: every option's help, the registered names and the
config's defaults in ``--help``, a did-you-mean for every unknown command, option, key or name,
and a log line for each step that takes seconds (emulation, probes, first framing)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from mpdsnn.cli import build_parser, main
from mpdsnn.data import digits_dvs, list_datasets
from mpdsnn.data.digits import raw_digits
from mpdsnn.data.emulator import emulate
from mpdsnn.data.frames import EventFrames, EventSource, FrameSpec
from mpdsnn.methods import create_method, list_methods
from mpdsnn.models import create_model, list_models
from mpdsnn.probes import run_probes

COMMANDS = ["train", "prepare", "evaluate", "list", "report", "claims", "recipe", "pipeline",
            "plots", "bench", "ui"]


def _help(capsys, command: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere


def _error(capsys, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    return err


def test_train_help_lists_every_registered_name_and_the_config_defaults(capsys):
    text = _help(capsys, "train")
    method = re.search(r"--method METHOD (.*?) --dataset", text).group(1)
    assert all(name in method for name in list_methods()) and "(default: ds-atgo)" in method
    dataset = re.search(r"--dataset DATASET (.*?) --model", text).group(1)
    assert all(name in dataset for name in list_datasets()) and "(default: digits)" in dataset
    model = re.search(r"--model MODEL (.*?) --seed", text).group(1)
    assert all(name in model for name in list_models())
    for flag, default in [("--seed SEED", "0"), ("--epochs EPOCHS", "20"), ("--lr LR", "0.1"),
                          ("--batch-size BATCH_SIZE", "64"), ("--T T", "the dataset's")]:
        assert re.search(re.escape(flag) + r" [^-]*\(default: " + re.escape(default) + r"\)", text), flag


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_every_command_has_help(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    sub.format_help()  # fills the texts computed only when help is printed
    bare = [a.option_strings or a.dest for a in sub._actions if not a.help]
    assert not bare, f"mpdsnn {command}: options without help: {bare}"


@pytest.mark.parametrize("argv, expected", [
    (["train", "--set", "epoch=3"],
     "unknown config key(s) epoch in command-line flags; did you mean epochs? valid keys: "),
    (["train", "--method", "ds-atg"], "unknown method 'ds-atg'; did you mean ds-atgo"),
    (["train", "--dataset", "digit"], "unknown dataset 'digit'; did you mean digits"),
    (["train", "--method-option", "fcc=2"], "for method 'ds-atgo'; did you mean fc? valid options: fc, "),
    (["train", "--set", "model_options={widht: 8}"],
     "unknown option(s) widht for model 'convnet'; did you mean width?"),
    (["train", "--epcohs", "3"],
     "unrecognized arguments: --epcohs 3 (did you mean --epochs?); see `mpdsnn train --help`"),
    (["trian"], "invalid choice: 'trian'; did you mean train? choose from train, "),
    (["prepare", "--dataset", "digits", "--option", "siz=3"],
     "unknown option(s) 'siz' for dataset 'digits'; did you mean size?"),
])
def test_unknown_names_suggest_the_closest_first(capsys, tmp_path, argv, expected):
    tail = ["--no-tracking", "--limit-batches", "1", "--epochs", "1"] if argv[0] == "train" else []
    out = ["--out", str(tmp_path / "run")] if argv[0] in ("train", "prepare") else []
    assert expected in _error(capsys, [*argv, *tail, *out])


def test_a_name_with_no_close_match_lists_the_valid_ones_without_a_guess(capsys, tmp_path):
    err = _error(capsys, ["train", "--method", "zzz", "--no-tracking", "--out", str(tmp_path / "r")])
    assert "unknown method 'zzz'; valid methods: " in err and "did you mean" not in err


# ---------------------------------------------------------------- progress of the slow steps

def test_digits_dvs_emulation_says_what_it_does_and_how_long_it_took(caplog, monkeypatch):
    monkeypatch.setattr(digits_dvs, "_MEMORY", {})  # emulate anew, whatever ran before
    caplog.set_level(logging.INFO, logger="mpdsnn.data.digits_dvs")
    indices = np.arange(300)  # more than one progress slice
    events, offsets, source = digits_dvs.digit_events(digits_dvs.emulator_config({}), indices)
    assert source == "generated" and len(offsets) == 301 and offsets[-1] == len(events)
    whole, whole_offsets = emulate(raw_digits()[0][indices] / 16.0, digits_dvs.emulator_config({}))
    assert np.array_equal(events, whole) and np.array_equal(offsets, whole_offsets)  # slicing is exact
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("emulating 300 digits as events") for line in lines), lines
    assert any(re.match(r"\.\.\. emulated 300 digits in \d+\.\d s", line) for line in lines), lines


def test_probes_log_their_start_and_duration(caplog):
    caplog.set_level(logging.INFO, logger="mpdsnn.probes")
    torch.manual_seed(0)
    model = create_model("convnet", create_method("ds-atgo"), T=2, num_classes=10, in_channels=1)
    result = run_probes(model, torch.rand(2, 4, 1, 8, 8), epoch=3)
    lines = [r.getMessage() for r in caplog.records]
    assert "probing epoch 3 on 4 samples (two forward passes, per-layer statistics)..." in lines
    assert any(re.fullmatch(rf"\.\.\. probed {len(result.layers)} layers in \d+\.\d s", line)
               for line in lines), lines


class _OneEventSource(EventSource):
    """Two recordings of one event each: enough to frame and cache (the frames are not checked)."""

    def _read(self, relpath: str) -> np.ndarray:
        events = np.zeros(1, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
        events["x"], events["y"] = 1, 2
        return events


def test_frames_say_once_that_they_are_cached_on_first_use(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mpdsnn.data.frames")
    source = _OneEventSource(tmp_path / "raw", [("a.bin", 0), ("b.bin", 1)], "test")
    spec = FrameSpec("toy-dvs", 2, "count", (4, 4), (4, 4, 2))
    frames = EventFrames(source, source.samples, spec, tmp_path / "frames")
    expected = f"toy-dvs: 2 recordings will be framed on first use and cached in {frames.cache}"
    assert [r.getMessage() for r in caplog.records] == [expected + " (the first epoch is slower)"]
    assert frames[0][0].shape == (2, 2, 4, 4) and (frames.cache / "a.bin.npy").is_file()
    caplog.clear()
    EventFrames(source, source.samples, spec, tmp_path / "frames")  # cache exists: nothing to say
    assert caplog.records == []


def test_python_dash_m_mpdsnn_is_the_same_command_line():
    """Where the console script is not on PATH (a bare GPU image), ``python -m mpdsnn``."""
    out = subprocess.run([sys.executable, "-m", "mpdsnn", "list"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ds-atgo" in out.stdout and "digits" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "mpdsnn", "trian"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "train" in bad.stderr
