"""The benchmark harness: its library adapters are the same neuron as ours, its measurements
are right on cases with known answers, and ``tiny`` produces the full table."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from mpdsnn.bench import (COLUMNS, loader_throughput, neuron_ratios, pipeline_phases, run_bench,
                          saved_bytes)
from mpdsnn.cli import main as cli_main
from mpdsnn.bench import neurons
from mpdsnn.bench.neurons import (
    FIXED_FUSED,
    SPIKINGJELLY,
    SPIKINGJELLY_KERNEL,
    snntorch_forward,
    snntorch_leaky,
    spikingjelly_forward,
    spikingjelly_lif,
)
from mpdsnn.bench.stage import OTHER, SPLIT, WALL, _command, split_phases
from mpdsnn.errors import UserError
from mpdsnn.methods import LayerContext, create_method
from mpdsnn.phases import BETWEEN_EPOCHS, PHASES, PhaseClock


def _our_fixed_lif(dtype: torch.dtype) -> torch.nn.Module:
    node = create_method("fixed").neuron(LayerContext(T=4)).to(dtype)
    node.decay.tau = torch.tensor(0.2, dtype=dtype)  # 0.2 in this dtype, as the libraries use
    return node


def test_spikingjelly_lif_is_our_fixed_lif():
    pytest.importorskip("spikingjelly")
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 8, 5, 5, generator=gen, dtype=torch.float64) * 1.5 + 0.5
    grad = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    s_ours = _our_fixed_lif(torch.float64)(ours)
    s_theirs = spikingjelly_forward(spikingjelly_lif(), theirs)
    assert torch.equal(s_ours, s_theirs)
    assert 0.1 < s_ours.mean() < 0.6  # both outcomes occur, so the comparison means something
    s_ours.backward(grad)
    s_theirs.backward(grad)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=1e-6)
    assert ours.grad.abs().sum() > 0


def test_snntorch_leaky_fires_like_our_fixed_lif():
    pytest.importorskip("snntorch")
    x = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(2)) * 1.5 + 0.5
    s_ours = _our_fixed_lif(torch.float32)(x)
    s_theirs = snntorch_forward(snntorch_leaky(), x)
    assert torch.equal(s_ours, s_theirs)
    assert (s_ours[1:] != (x[1:] >= 1)).any()  # the decayed potential matters after t = 1


def test_saved_bytes_counts_each_storage_once_and_skips_excluded():
    x = torch.randn(1000, requires_grad=True)
    w = torch.randn(1000, requires_grad=True)
    assert saved_bytes(lambda: x * x) == 4000  # mul saves x twice: one storage
    assert saved_bytes(lambda: (x * w).exp()) == 4000 + 4000 + 4000  # x, w, exp's output
    assert saved_bytes(lambda: (x * w).exp(), exclude=[w]) == 8000


def test_loader_throughput_counts_the_timed_samples():
    data = TensorDataset(torch.zeros(100, 3), torch.zeros(100))
    r = loader_throughput(data, batch_size=10, max_batches=5)
    assert r["samples"] == 50 and r["samples_per_s"] > 0
    assert loader_throughput(data, batch_size=10)["samples"] == 90  # all after one warm-up
    with pytest.raises(UserError, match="no batches to time"):
        loader_throughput(TensorDataset(torch.zeros(5, 1)), batch_size=10)


def test_bad_sizes_and_levels_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="valid bench sizes: cpu, gpu, tiny"):
        run_bench("huge", tmp_path)
    with pytest.raises(UserError, match="unknown bench level.*valid levels: model, neuron, pipeline"):
        run_bench("tiny", tmp_path, levels=("kernel",))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("spikingjelly")
    pytest.importorskip("snntorch")
    out = tmp_path_factory.mktemp("bench")
    data = {"random frames": TensorDataset(torch.rand(40, 2, 2, 8, 8), torch.zeros(40))}
    return run_bench("tiny", out, datasets=data), out


def test_tiny_bench_has_every_row_and_column(tiny):
    table, _ = tiny
    assert list(table.columns) == COLUMNS
    neuron = table[table.level == "neuron"]
    expected = {f"mpdsnn {m} ({b})" for m in ("fixed", "ds-atgo")
                for b in ("reference", "fused", "compiled")}
    expected |= {"spikingjelly LIFNode (torch)", "snntorch Leaky (loop)"}
    assert FIXED_FUSED in expected
    for (_, T), group in neuron.groupby(["workload", "T"]):
        assert set(group.impl) == expected
    assert sorted(neuron["T"].unique()) == [2, 4] and neuron.workload.nunique() == 2
    model = table[table.level == "model"]
    assert len(model) == 2 * 5 * 3  # networks x methods x backends
    assert set(model.impl) == {f"{m} ({b})" for m in ("vanilla", "ds-atgo", "fixed", "tet", "mpd-agl")
                               for b in ("reference", "fused", "compiled")}
    compiled = table[table.impl.str.endswith("(compiled)")]
    assert (compiled.setup_s > 0).all()  # the first call, compiling or loading the kernels
    timed = table[table.level != "pipeline"]
    assert (timed.time_ms > 0).all() and (timed.saved_mb > 0).all()
    assert (model.samples_per_s > 0).all()
    baseline = timed[timed.impl == timed.vs]
    assert (baseline.time_ratio == 1).all() and (baseline.mem_ratio == 1).all()
    pipeline = table[table.level == "pipeline"]
    assert list(pipeline.workload) == ["random frames"] and pipeline.samples_per_s.iloc[0] > 0


def test_tiny_bench_fused_saves_less_activation_memory(tiny):
    table, _ = tiny
    fused = table[table.impl.str.endswith("(fused)") | table.impl.str.endswith("(compiled)")]
    # tet's neuron (its code's triangle surrogate) is not rectangular: it stays on the reference
    fusable = fused[(fused.level == "model") & ~fused.impl.str.startswith("tet ")]
    assert len(fusable) and (fusable.mem_ratio < 0.8).all()
    assert (fused[fused.impl.str.startswith("tet ")].mem_ratio == 1.0).all()
    ds = table[(table.level == "neuron") & (table.impl.str.startswith("mpdsnn ds-atgo"))]
    by_impl = ds.groupby("impl").saved_mb.sum()
    assert by_impl["mpdsnn ds-atgo (fused)"] * 3 < by_impl["mpdsnn ds-atgo (reference)"]


def test_tiny_bench_writes_csv_and_json(tiny):
    table, out = tiny
    assert (out / "bench.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    payload = json.loads((out / "bench.json").read_text())
    assert payload["sizes"] == "tiny" and len(payload["rows"]) == len(table)
    assert len(payload["neuron_ratios"]) == 2 * 2 + 1  # workloads x T, then the median row
    assert payload["machine"]["torch"] == torch.__version__ and payload["machine"]["cpu_count"] > 0


def test_main_prints_the_table(tmp_path, capsys):
    assert cli_main(["bench", "--sizes", "tiny", "--levels", "neuron", "--no-libraries",
                 "--out", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "mpdsnn ds-atgo (fused)" in shown and "spikingjelly" not in shown
    assert "peak_mb" in shown  # CUDA's peak memory is printed too (empty on a CPU)
    assert (tmp_path / "bench.json").exists()


def test_neuron_ratios_divide_rows_of_the_same_workload_and_give_medians():
    rows = []
    for workload, scale in (("a", 1.0), ("b", 3.0)):
        for impl, ms in (("mpdsnn fixed (fused)", 10), ("mpdsnn fixed (compiled)", 5),
                         ("mpdsnn ds-atgo (fused)", 12), ("mpdsnn ds-atgo (compiled)", 6 * scale),
                         ("spikingjelly LIFNode (torch)", 20)):
            rows.append({"level": "neuron", "workload": workload, "T": 4, "impl": impl,
                         "time_ms": ms * 1.0})
    rows.append({"level": "model", "workload": "a", "T": 4, "impl": "x", "time_ms": 1.0})
    ratios = neuron_ratios(pd.DataFrame(rows)).set_index("workload")
    assert ratios.loc["a", "ds-atgo/fixed fused"] == pytest.approx(1.2)
    assert ratios.loc["a", "ds-atgo/fixed compiled"] == pytest.approx(1.2)
    assert ratios.loc["b", "ds-atgo/fixed compiled"] == pytest.approx(3.6)
    assert ratios.loc["median", "ds-atgo/fixed compiled"] == pytest.approx(2.4)
    assert ratios.loc["a", "fixed fused/compiled"] == pytest.approx(2.0)
    assert ratios.loc["a", "spikingjelly/fixed compiled"] == pytest.approx(4.0)
    assert ratios["snntorch/fixed compiled"].isna().all()  # no snnTorch row: no ratio
    assert ratios["spikingjelly kernel/fixed compiled"].isna().all()  # CUDA only


def test_neuron_ratios_compare_spikingjellys_cuda_kernel_with_ours():
    rows = [{"level": "neuron", "workload": "a", "T": 4, "impl": impl, "time_ms": ms}
            for impl, ms in (("mpdsnn fixed (fused)", 6.0), ("mpdsnn fixed (compiled)", 2.0),
                             (SPIKINGJELLY_KERNEL, 3.0), (SPIKINGJELLY, 30.0))]
    ratios = neuron_ratios(pd.DataFrame(rows)).set_index("workload")
    assert ratios.loc["a", "spikingjelly kernel/fixed compiled"] == pytest.approx(1.5)
    assert ratios.loc["a", "spikingjelly kernel/fixed fused"] == pytest.approx(0.5)
    assert ratios.loc["a", "spikingjelly/fixed compiled"] == pytest.approx(15.0)


def test_spikingjellys_kernel_surrogate_keeps_the_forward_and_is_one_its_kernels_take():
    """SpikingJelly's CUDA kernels refuse Rect (a Rect LIFNode runs the Torch loop there), so its
    kernel row uses the triangle: the same spikes, a surrogate its kernels accept."""
    pytest.importorskip("spikingjelly")
    from spikingjelly._ops.surrogate import _surrogate_spec

    rect, triangle = spikingjelly_lif(), spikingjelly_lif(kernel_surrogate=True)
    assert _surrogate_spec(rect.surrogate_function) is None  # what makes us need the triangle
    assert _surrogate_spec(triangle.surrogate_function) is not None
    x = torch.randn(4, 8, 5, 5, generator=torch.Generator().manual_seed(3)) * 1.5 + 0.5
    assert torch.equal(spikingjelly_forward(triangle, x), _our_fixed_lif(torch.float32)(x))
    assert neurons.spikingjelly_kernel_name(torch.device("cpu")) == "torch-reference"


def test_the_cuda_kernel_row_is_added_on_cuda_or_left_out_with_the_reason(monkeypatch, caplog):
    pytest.importorskip("spikingjelly")
    on_cpu = {c.name for c in neurons._library_candidates(torch.device("cpu"))}
    assert SPIKINGJELLY in on_cpu and SPIKINGJELLY_KERNEL not in on_cpu
    monkeypatch.setattr(neurons, "spikingjelly_kernel_name", lambda device: "triton")
    cuda = {c.name: c for c in neurons._library_candidates(torch.device("cuda"))}
    assert SPIKINGJELLY in cuda and SPIKINGJELLY_KERNEL in cuda
    assert type(cuda[SPIKINGJELLY_KERNEL].module.surrogate_function).__name__ == "PiecewiseQuadratic"

    def no_kernel(device):
        raise RuntimeError("No available sj_lif CUDA implementation. triton: no module")

    monkeypatch.setattr(neurons, "spikingjelly_kernel_name", no_kernel)
    with caplog.at_level("WARNING"):
        names = {c.name for c in neurons._library_candidates(torch.device("cuda"))}
    assert SPIKINGJELLY in names and SPIKINGJELLY_KERNEL not in names
    assert "No available sj_lif CUDA implementation" in caplog.text


# --- pipeline level: one real train stage split into phases ---------------------------------

class _FakeClocks:
    """perf_counter and time.time that move only when told, 1000 s apart."""

    def __init__(self, monkeypatch) -> None:
        self.now = 0.0
        monkeypatch.setattr("mpdsnn.phases.time.perf_counter", lambda: self.now)
        monkeypatch.setattr("mpdsnn.phases.time.time", lambda: 1000.0 + self.now)


def test_phase_clock_gives_every_moment_to_exactly_one_phase(monkeypatch):
    t = _FakeClocks(monkeypatch)
    clock = PhaseClock("start-up")
    t.now = 2.0
    with clock.phase("data"):
        t.now = 3.5
    t.now = 4.0  # back in start-up
    clock.switch("between epochs")
    with clock.phase("training"):
        t.now = 10.0
        with clock.phase("evaluation"):  # nested: not counted twice
            t.now = 11.0
        t.now = 12.0
    t.now = 12.25
    record = clock.record()
    assert record["phase_seconds"] == {"start-up": 2.5, "data": 1.5, "between epochs": 0.25,
                                       "training": 7.0, "evaluation": 1.0}
    assert record["phase_clock"] == {"started_at": 1000.0, "recorded_at": 1012.25}


def test_split_adds_the_time_outside_the_clock_to_start_up_and_teardown():
    recorded = {"phase_seconds": {"start-up": 1.0, "data": 2.0, "training": 10.0,
                                  "evaluation": 3.0, "probes": 0.5, "teardown": 0.25,
                                  BETWEEN_EPOCHS: 0.75},
                "phase_clock": {"started_at": 105.0, "recorded_at": 122.5}}
    split = split_phases(recorded, spawned_at=100.0, exited_at=126.0)
    assert list(split) == list(SPLIT)
    assert split["start-up"] == 5.0 + 1.0 and split["teardown"] == 0.25 + 3.5
    assert split[WALL] == 26.0 and split[OTHER] == pytest.approx(0.75)
    assert sum(split[p] for p in (*PHASES, OTHER)) == pytest.approx(split[WALL])


def test_the_stage_command_is_dvc_yamls_train_command():
    import yaml

    dvc_yaml = Path(__file__).resolve().parents[1] / "dvc.yaml"
    template = yaml.safe_load(dvc_yaml.read_text())["stages"]["train"]["cmd"]
    values = {"item.dataset": "digits", "item.method": "ds-atgo", "item.seed": 0,
              "pipeline": "default"}
    env, argv = _command(template, values)
    assert env == {"MPDSNN_DVC_STAGE": "train@digits-ds-atgo-0"}
    assert argv[1:4] == ["-m", "mpdsnn.cli", "train"]
    assert argv[argv.index("--out") + 1] == "runs/default/digits/ds-atgo/seed0"
    assert "--resume-if-compatible" in argv and argv[argv.index("--params") + 1] == "params.yaml"
    with pytest.raises(UserError, match=r"uses \$\{item.seed\}, which the bench does not know"):
        _command(template, {k: v for k, v in values.items() if k != "item.seed"})


@pytest.mark.slow
def test_train_records_its_phases_in_the_run_folder(tmp_path):
    out = tmp_path / "run"
    assert cli_main(["train", "--method", "vanilla", "--dataset", "digits", "--epochs", "2",
                     "--no-tracking", "--set", "train_subset=400", "--set", "test_subset=200",
                     "--set", "probe_samples=64", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    seconds, clock = metrics["phase_seconds"], metrics["phase_clock"]
    assert set(seconds) == {*PHASES, BETWEEN_EPOCHS} and all(s > 0 for s in seconds.values())
    # perf_counter phases against the wall clock's two stamps: every moment counted once
    assert sum(seconds.values()) == pytest.approx(clock["recorded_at"] - clock["started_at"], abs=0.05)
    # history's epoch seconds (their own timer) are training, the scheduler step and evaluation
    # (vanilla has no batch-statistics evaluation after the last epoch)
    epochs = pd.read_csv(out / "history.csv")["seconds"].sum()
    assert seconds["training"] + seconds["evaluation"] == pytest.approx(epochs, abs=0.05)


@pytest.mark.slow
def test_pipeline_level_splits_a_real_train_stage(tmp_path, capsys):
    assert cli_main(["bench", "--sizes", "tiny", "--levels", "pipeline", "--out", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "where its wall time went" in shown and "% of wall" in shown
    assert "mpdsnn ds-atgo" not in shown  # the neuron and model levels did not run
    table = pd.read_csv(tmp_path / "bench.csv")
    split = pipeline_phases(table).set_index("phase")["seconds"]
    assert list(split.index) == list(SPLIT)
    assert (split[list(PHASES)] >= 0).all() and split["training"] > 0 and split["start-up"] > 1
    assert split[list(PHASES) + [OTHER]].sum() == pytest.approx(split[WALL])
    payload = json.loads((tmp_path / "bench.json").read_text())
    stage = payload["pipeline_stage"]
    assert stage["stage"] == "train@digits-ds-atgo-0" and stage["epochs"] == 1
    assert stage["load_avg_1m"] is not None and stage["load_avg_1m_end"] is not None
    # timed from outside: the interpreter and imports before the clock, MLflow and exit after it
    assert 0 < stage["before_clock_s"] < split["start-up"]
    assert 0 < stage["after_record_s"] < split["teardown"]
    # what the six phases leave is the trainer's own bookkeeping between epochs, to 0.1 s
    assert split[OTHER] == pytest.approx(stage["between_epochs_s"], abs=0.1)
    assert [r["phase"] for r in payload["pipeline_phases"]] == list(SPLIT)
    assert payload["pipeline_phases"][-1]["pct_of_wall"] == pytest.approx(100)
