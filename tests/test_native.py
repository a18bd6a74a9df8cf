"""The compiled backend's C charge (mpdsnn/neuron/native.py): the same bits as the inductor
kernels and the reference, its build cached, and a clean fall-back where it cannot be built."""

import copy
import logging

import pytest
import torch

from mpdsnn.methods import LayerContext, create_method
from mpdsnn.neuron import compiled, native
from mpdsnn.neuron.fused import fuse_neurons
from neuron_pairs import assert_same, inputs, layer_node, pair


@pytest.fixture(scope="module")
def lib():
    built = native.library()
    if built is None:
        pytest.skip(f"the native charge cannot be built here: {native._state.get('failed')}")
    return built


def _operands(dtype: torch.dtype, n: int = 10_007):
    """Potentials around a threshold of 0.75 (some exactly on it), currents, and a decay and
    input scale that are not 1, so every term of the charge matters."""
    gen = torch.Generator().manual_seed(5)
    u_prev = torch.randn(n, generator=gen, dtype=dtype)
    u_prev[::97] = 0.75
    x = torch.randn(n, generator=gen, dtype=dtype)
    scalars = [torch.tensor(v, dtype=dtype) for v in (0.75, 0.3, 0.9)]  # fire, tau, scale
    return u_prev, x, scalars


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_c_charge_is_the_inductor_kernels_bit_for_bit(lib, dtype):
    u_prev, x, (fire, tau, scale) = _operands(dtype)
    c = native.NativeCharge(lib, dtype)
    outs = {}
    for name, kernels in (("c", c), ("inductor", compiled._InductorCharge)):
        u, spikes = torch.empty_like(x), torch.empty_like(x)
        sums = kernels.charge_sums(u_prev, fire, x, tau, scale, u, spikes)
        plain_u, plain_spikes = torch.empty_like(x), torch.empty_like(x)
        kernels.charge(u_prev, fire, x, tau, scale, plain_u, plain_spikes)
        first, first_sums = kernels.first_sums(x, scale)
        outs[name] = (u, spikes, sums, plain_u, plain_spikes, first, first_sums)
    keep = (u_prev < fire).to(dtype)
    reference = tau * u_prev * keep + scale * x  # the reference LIF's charge, op for op
    u, spikes, sums, plain_u, plain_spikes, first, first_sums = outs["c"]
    for got, want in zip(outs["c"], outs["inductor"]):
        if isinstance(got, torch.Tensor):
            assert torch.equal(got, want)
    assert torch.equal(u, reference) and torch.equal(plain_u, reference)
    assert torch.equal(spikes, (u_prev >= fire).to(dtype)) and torch.equal(plain_spikes, spikes)
    assert torch.equal(first, scale * x)
    for got, values in ((sums, reference), (first_sums, scale * x)):
        exact = values.double()
        assert got == pytest.approx([exact.sum().item(), exact.square().sum().item()], rel=1e-12)


def test_a_float64_input_into_float32_buffers_charges_as_the_reference(lib):
    """The C reads each scalar as the layer's dtype: a float32 decay and threshold meeting
    float64 currents are cast first, as type promotion casts them in the reference."""
    ref = create_method("fixed").neuron(LayerContext(T=4))  # float32 buffers
    fast = copy.deepcopy(ref)
    fuse_neurons(fast, "compiled")
    x = torch.randn(4, 16, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.equal(ref(x + 0.5), fast(x + 0.5))


def test_the_build_is_reused_not_redone(lib, tmp_path, monkeypatch):
    assert native.status().startswith("native_lif-") and native.status().endswith(".so")
    first = native.build(tmp_path)
    built_at = first.stat().st_mtime_ns
    calls = []
    real_run = native.subprocess.run
    monkeypatch.setattr(native.subprocess, "run",
                        lambda args, **kw: calls.append(args) or real_run(args, **kw))
    assert native.build(tmp_path) == first and first.stat().st_mtime_ns == built_at
    assert [a for a in calls if "-shared" in a] == []  # only `cc --version`, no compilation
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # no partial file left


def test_without_a_compiler_the_layer_charges_with_inductor_and_says_why(monkeypatch, caplog):
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setenv("CC", "/nonexistent/cc")
    ref, fast = pair(layer_node("ds-atgo", {}, 4), "compiled")
    with caplog.at_level(logging.WARNING, logger="mpdsnn.neuron.native"):
        assert_same(ref, fast, *inputs(4, 0), running_rtol=1e-12)
    assert native.library() is None and native.status().startswith("inductor kernels: ")
    assert "native charge could not be built" in caplog.text and "/nonexistent/cc" in caplog.text


def test_a_failing_compiler_is_named_with_its_message(tmp_path, monkeypatch):
    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'cc: error: no such flag' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    with pytest.raises(RuntimeError, match="cc failed: cc: error: no such flag"):
        native.build(tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # the partial output is removed


def test_more_than_one_thread_charges_with_inductors_parallel_kernels(lib):
    flat = torch.zeros(4, 100)
    assert isinstance(compiled._charge_for(flat), native.NativeCharge)
    torch.set_num_threads(2)
    try:
        assert compiled._charge_for(flat) is compiled._InductorCharge
    finally:
        torch.set_num_threads(1)
    assert compiled._charge_for(flat.t().contiguous().t()) is compiled._InductorCharge  # strided
    assert compiled._charge_for(flat.half()) is compiled._InductorCharge


def test_the_c_source_is_training_code():
    """A run's code hash (and so its stage key) changes when the C charge changes."""
    from mpdsnn.runfolder.fingerprint import training_code_files

    assert native.SOURCE.resolve() in {p.resolve() for p in training_code_files()}
