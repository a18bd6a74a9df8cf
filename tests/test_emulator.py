"""Invariants of the event-camera emulator (mpdsnn.data.emulator)."""

import numpy as np
import pytest
from tonic.transforms import ToFrame

from mpdsnn.data.digits import raw_digits
from mpdsnn.data.emulator import (
    EVENT_DTYPE,
    EmulatorConfig,
    emulate,
    emulate_one,
    sensor_thresholds,
    trajectory,
)
from mpdsnn.errors import UserError


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """Six real digits scaled to 0..1, ``[6, 8, 8]``."""
    return raw_digits()[0][:6] / 16.0


def per_recording(events: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [events[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def test_blank_or_still_scene_makes_no_events(digits):
    events, offsets = emulate(np.zeros((2, 8, 8)))
    assert len(events) == 0 and offsets.tolist() == [0, 0, 0]
    still = EmulatorConfig(amplitude_px=0.0)
    assert len(emulate(digits, still)[0]) == 0


def test_events_are_a_sorted_tonic_array_inside_sensor_and_recording(digits):
    cfg = EmulatorConfig()
    events, offsets = emulate(digits, cfg)
    assert events.dtype == EVENT_DTYPE
    assert offsets[0] == 0 and offsets[-1] == len(events) and np.all(np.diff(offsets) > 1000)
    for rec in per_recording(events, offsets):
        assert np.all(np.diff(rec["t"]) >= 0)
        assert rec["t"].min() >= 0 and rec["t"].max() <= cfg.duration_us == 300_000
        assert rec["x"].min() >= 0 and rec["x"].max() < cfg.sensor_size[0]
        assert rec["y"].min() >= 0 and rec["y"].max() < cfg.sensor_size[1]
    frames = ToFrame(sensor_size=(34, 34, 2), n_event_bins=5)(per_recording(events, offsets)[0])
    assert frames.shape == (5, 2, 34, 34)


def test_event_count_grows_with_motion_amplitude(digits):
    counts = [len(emulate(digits, EmulatorConfig(amplitude_px=a))[0]) for a in (0.5, 1.0, 2.0, 4.0)]
    assert counts == sorted(counts) and len(set(counts)) == 4
    longer_path = EmulatorConfig(waypoints=((0, 0), (1, 0), (0, 0), (1, 0)))
    shorter_path = EmulatorConfig(waypoints=((0, 0), (1, 0), (0, 0)))
    assert len(emulate(digits, longer_path)[0]) > len(emulate(digits, shorter_path)[0])


def _on_off_per_pixel(rec: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    on, off = np.zeros(shape), np.zeros(shape)
    np.add.at(on, (rec["y"][rec["p"]], rec["x"][rec["p"]]), 1)
    np.add.at(off, (rec["y"][~rec["p"]], rec["x"][~rec["p"]]), 1)
    return on, off


@pytest.mark.parametrize("waypoints", [((0, 0), (1, 0), (0, 0)), ((0, 0), (0.5, 1), (-0.5, 1), (0, 0))])
def test_closed_motion_balances_polarities(digits, waypoints):
    """A path that returns to its start leaves every pixel's log intensity where it began, and each
    pixel's reference within one threshold of it, so per pixel ``C_on * ON - C_off * OFF`` lies in
    ``(-C_on, C_off)``. Ideal sensor (equal thresholds): ON == OFF exactly at every pixel. With
    the default mismatch (0.2 +- 0.03) ON/OFF ~ C_off/C_on varies per pixel (sd ~ 0.2) but averages
    over the ~400 active pixels of a recording to ~1% (sd); 5% is a > 4 sd bound."""
    ideal = EmulatorConfig(waypoints=waypoints, threshold_sigma=0.0)
    for rec in per_recording(*emulate(digits, ideal)):
        on, off = _on_off_per_pixel(rec, (34, 34))
        assert on.sum() > 500 and np.array_equal(on, off)
    real = EmulatorConfig(waypoints=waypoints)
    c_off, c_on = sensor_thresholds(real).astype(np.float64)
    for rec in per_recording(*emulate(digits, real)):
        on, off = _on_off_per_pixel(rec, (34, 34))
        net = c_on * on - c_off * off
        assert np.all(net > -c_on - 1e-5) and np.all(net < c_off + 1e-5)
        assert abs(on.sum() - off.sum()) / (on.sum() + off.sum()) < 0.05


def test_multiple_events_per_step_with_interpolated_timestamps():
    """A bright 4x4 square jumps one pixel right in a single 1 ms step on an ideal sensor: the
    entering column goes from log(0.1) to log(1.1), i.e. floor(log(11) / 0.2) = 11 ON events per
    pixel, the leaving column 11 OFF events, the j-th at j * 0.2 / log(11) of the step."""
    cfg = EmulatorConfig(sensor_size=(11, 10), image_size=4, amplitude_px=1.0,
                         waypoints=((0, 0), (1, 0)), saccade_ms=1.0, threshold_sigma=0.0)
    rec = emulate_one(np.ones((4, 4)), cfg)
    on, off = rec[rec["p"]], rec[~rec["p"]]
    assert len(on) == len(off) == 4 * 11
    assert set(on["x"].tolist()) == {7} and set(off["x"].tolist()) == {3}
    assert set(on["y"].tolist()) == {3, 4, 5, 6}
    pixel = on[on["y"] == 3]["t"]
    expected = np.rint(np.arange(1, 12) * np.float32(0.2) / np.log(11) * 1000)
    assert np.abs(pixel - expected).max() <= 1


def test_deterministic_and_chunk_independent(digits):
    cfg = EmulatorConfig()
    events, offsets = emulate(digits, cfg)
    again, _ = emulate(digits, cfg)
    assert np.array_equal(events, again)
    assert np.array_equal(emulate_one(digits[3], cfg), events[offsets[3]:offsets[4]])
    other_sensor, _ = emulate(digits, EmulatorConfig(seed=1))
    assert not (len(other_sensor) == len(events) and np.array_equal(other_sensor, events))


def test_trajectory_is_nmnist_triangle_centred_on_the_sensor():
    cfg = EmulatorConfig()
    path = trajectory(cfg)
    assert path.shape == (cfg.n_steps + 1, 2) == (301, 2)
    corners = path[[0, 100, 200, 300]] - path[0]
    assert np.allclose(corners, [[0, 0], [1.5, 3], [-1.5, 3], [0, 0]])
    assert np.allclose((path.min(0) + path.max(0)) / 2 + cfg.image_size / 2, 17.0)
    speed = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert speed[0] < speed[50] / 50 and speed[99] < speed[50] / 50  # eased saccade ends


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": 32}, "does not fit"),
    ({"dt_ms": 3.0}, "must be > 0 and divide saccade_ms"),
    ({"threshold": 0.0}, "threshold and eps must be > 0"),
    ({"waypoints": ((0.0, 0.0),)}, "at least two points"),
])
def test_bad_parameters_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        EmulatorConfig(**kwargs)


def test_negative_intensity_is_a_user_error():
    with pytest.raises(UserError, match="intensities >= 0"):
        emulate(-np.ones((1, 8, 8)))
