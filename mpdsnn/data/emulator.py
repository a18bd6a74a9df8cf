"""A small event-camera emulator: still images seen by a moving DVS sensor, as in N-MNIST.

Why: no real event dataset can be downloaded where the embedded default must run, yet the event
code path (tonic structured arrays -> ``tonic.transforms.ToFrame`` -> ``[T, 2, H, W]`` frames)
must be exercised exactly as real recordings exercise it. Turning the embedded digits into events
gives real, learnable event data with no download.

Model (one recording per image; every step is vectorised over images and pixels):

1. Scene. The image (intensity >= 0, e.g. 0..1) is resized bilinearly to ``image_size`` pixels
   and placed on a dark sensor canvas of ``sensor_size = (W, H)`` pixels.
2. Motion. Like N-MNIST (Orchard et al. 2015) the sensor makes straight-line saccades through
   ``waypoints`` (in units of ``amplitude_px``; the default is N-MNIST's triangle of three
   saccades: down-right, left, up-right back to the start), each lasting ``saccade_ms``. Speed
   along a saccade follows a cosine ease (0 at both ends), which gives the bell-shaped event rate
   per saccade that real N-MNIST recordings show. The path is centred on the sensor and sampled
   every ``dt_ms``; translation is sub-pixel (bilinear), so edges move smoothly.
3. Pixels. Each pixel sees log intensity ``L = log(eps + I)``; ``eps`` is the screen's black
   level and keeps the log finite on a dark background. A pixel keeps a reference level, set to
   ``L`` at time 0 (the sensor has been watching the still scene). At each step, while ``L`` is
   at least one ON threshold above the reference, it emits an ON event (``p = 1``) and raises the
   reference by that threshold; likewise OFF events (``p = 0``) downwards. A change spanning
   several thresholds in one step gives several events.
4. Thresholds. Per-pixel ON and OFF thresholds are drawn once per sensor from
   ``N(threshold, threshold_sigma)`` (clipped at 0.01) with ``seed``: the mismatch of a real
   sensor (defaults as in the v2e emulator: 0.2 +- 0.03). ``threshold_sigma = 0`` gives an ideal
   sensor.
5. Time. Within a step the log intensity is taken as linear in time, so the k-th crossing of a
   step gets the timestamp at which it reaches its level (microseconds, rounded): deterministic,
   no random jitter. Events of a recording are sorted by ``t`` and lie in ``[0, duration_us]``.

Output: tonic's structured event array (``EVENT_DTYPE``: x, y int16; t int64 us; p bool), the
dtype of ``tonic.datasets.DVSGesture``, which ``tonic.transforms.ToFrame`` accepts as is.
A 24x24 digit on a 34x34 sensor gives a few thousand events per 300 ms recording, like N-MNIST.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from mpdsnn.data._resize import resize_bilinear
from mpdsnn.errors import UserError

log = logging.getLogger(__name__)

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])

# N-MNIST's triangle in units of the amplitude, (x, y) with y pointing down.
NMNIST_TRIANGLE: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.5, 1.0), (-0.5, 1.0), (0.0, 0.0))

_MIN_THRESHOLD = 0.01  # a threshold drawn at or below zero would fire endlessly (v2e clips too)
_CHUNK = 128  # images per vectorised pass: keeps the working arrays in cache


@dataclass(frozen=True)
class EmulatorConfig:
    """Every parameter that shapes the events; frozen, so its repr is a stable cache key.

    ``sensor_size``: (W, H) pixels. ``image_size``: side the image is resized to. ``amplitude_px``:
    scale of ``waypoints`` in pixels. ``saccade_ms``: duration of each segment between waypoints.
    ``dt_ms``: simulation step. ``threshold``/``threshold_sigma``: contrast threshold in log units
    and its per-pixel spread. ``eps``: black level in ``log(eps + I)``. ``seed``: draws the
    per-pixel thresholds (one seed = one sensor).
    """

    sensor_size: tuple[int, int] = (34, 34)
    image_size: int = 24
    amplitude_px: float = 3.0
    waypoints: tuple[tuple[float, float], ...] = NMNIST_TRIANGLE
    saccade_ms: float = 100.0
    dt_ms: float = 1.0
    threshold: float = 0.2
    threshold_sigma: float = 0.03
    eps: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.image_size < 1 or min(self.sensor_size) < 1:
            raise UserError(f"emulator sizes must be positive, got image_size={self.image_size}, "
                            f"sensor_size={self.sensor_size}")
        if len(self.waypoints) < 2:
            raise UserError("emulator waypoints need at least two points (one saccade)")
        if self.threshold <= 0 or self.threshold_sigma < 0 or self.eps <= 0 or self.amplitude_px < 0:
            raise UserError("emulator threshold and eps must be > 0, threshold_sigma and "
                            f"amplitude_px >= 0; got threshold={self.threshold}, eps={self.eps}, "
                            f"threshold_sigma={self.threshold_sigma}, amplitude_px={self.amplitude_px}")
        steps = self.saccade_ms / self.dt_ms if self.dt_ms > 0 else 0.0
        if self.dt_ms <= 0 or steps < 1 or abs(steps - round(steps)) > 1e-9:
            raise UserError(f"dt_ms={self.dt_ms} must be > 0 and divide saccade_ms={self.saccade_ms}")
        xs, ys = self._path_extent()
        if self.image_size + xs > self.sensor_size[0] or self.image_size + ys > self.sensor_size[1]:
            raise UserError(
                f"image_size={self.image_size} plus the motion ({xs:g} x {ys:g} px) does not fit the "
                f"{self.sensor_size[0]}x{self.sensor_size[1]} sensor: lower image_size or amplitude_px")

    def _path_extent(self) -> tuple[float, float]:
        w = np.asarray(self.waypoints, dtype=np.float64) * self.amplitude_px
        return float(np.ptp(w[:, 0])), float(np.ptp(w[:, 1]))

    @property
    def steps_per_saccade(self) -> int:
        return int(round(self.saccade_ms / self.dt_ms))

    @property
    def n_steps(self) -> int:
        return self.steps_per_saccade * (len(self.waypoints) - 1)

    @property
    def duration_us(self) -> int:
        return int(round(self.n_steps * self.dt_ms * 1000))


def trajectory(config: EmulatorConfig) -> np.ndarray:
    """``[n_steps + 1, 2]`` top-left (x, y) of the image on the sensor at each step, in pixels."""
    w = np.asarray(config.waypoints, dtype=np.float64) * config.amplitude_px
    s = np.arange(1, config.steps_per_saccade + 1) / config.steps_per_saccade
    ease = (1.0 - np.cos(np.pi * s)) / 2.0  # 0 -> 1 with zero speed at both ends
    points = [w[:1]]
    for a, b in zip(w[:-1], w[1:]):
        points.append(a * (1.0 - ease[:, None]) + b * ease[:, None])  # exact b at the end
    path = np.concatenate(points)
    sensor = np.asarray(config.sensor_size, dtype=np.float64)
    centre = (w.min(axis=0) + w.max(axis=0)) / 2.0
    return path - centre + (sensor - config.image_size) / 2.0


def sensor_thresholds(config: EmulatorConfig) -> np.ndarray:
    """``[2, H, W]`` per-pixel thresholds, index 0 = OFF, 1 = ON (the polarity)."""
    rng = np.random.default_rng(config.seed)
    w, h = config.sensor_size
    c = config.threshold + config.threshold_sigma * rng.standard_normal((2, h, w))
    return np.maximum(c, _MIN_THRESHOLD).astype(np.float32)


def emulate(images: np.ndarray, config: EmulatorConfig = EmulatorConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Turn still images into event recordings.

    ``images``: ``[N, h, w]`` intensities >= 0 (any size; resized to ``config.image_size``).
    Returns ``(events, offsets)``: one structured array of every recording concatenated, each
    sorted by ``t``, and ``offsets`` ``[N + 1]`` so that recording i is
    ``events[offsets[i]:offsets[i + 1]]``.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise UserError(f"emulate expects images [N, H, W], got shape {images.shape}")
    if not np.all(np.isfinite(images)) or (images.size and images.min() < 0):
        raise UserError("emulate expects finite intensities >= 0 (scale images to 0..1)")
    if images.shape[1:] != (config.image_size, config.image_size):
        images = resize_bilinear(images, config.image_size)
    thresholds = sensor_thresholds(config)
    path = trajectory(config)
    chunks, counts = [], []
    for start in range(0, len(images), _CHUNK):
        events, count = _emulate_chunk(images[start:start + _CHUNK], path, thresholds, config)
        chunks.append(events)
        counts.append(count)
    events = np.concatenate(chunks) if chunks else np.zeros(0, EVENT_DTYPE)
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts) if counts else [])]).astype(np.int64)
    return events, offsets


def emulate_one(image: np.ndarray, config: EmulatorConfig = EmulatorConfig()) -> np.ndarray:
    """One ``[h, w]`` image -> its sorted event array."""
    return emulate(np.asarray(image)[None], config)[0]


def _emulate_chunk(images: np.ndarray, path: np.ndarray, thresholds: np.ndarray,
                   config: EmulatorConfig) -> tuple[np.ndarray, np.ndarray]:
    n, s = len(images), config.image_size
    w, h = config.sensor_size
    # Only the window the image can ever cover is simulated: pixels outside it stay dark forever.
    x0, y0 = np.floor(path.min(axis=0)).astype(int)
    x1, y1 = np.floor(path.max(axis=0)).astype(int) + s + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    ww, wh = x1 - x0, y1 - y0
    margin = max(w, h) + 1  # room for any placement of the image on (or beyond) the sensor
    canvas = np.zeros((n, s + 2 * margin, s + 2 * margin), dtype=np.float32)
    canvas[:, margin:margin + s, margin:margin + s] = images
    eps = np.float32(config.eps)

    def log_intensity(k: int) -> np.ndarray:
        """``[n, wh * ww]`` log intensity in the window with the image's top-left at ``path[k]``."""
        ox, oy = path[k]
        ix, iy = int(np.floor(ox)), int(np.floor(oy))
        fx, fy = np.float32(ox - ix), np.float32(oy - iy)
        sx, sy = margin - ix + x0, margin - iy + y0
        rows = canvas[:, sy - 1:sy + wh]  # one extra row above for the vertical blend
        cols = rows[:, :, sx:sx + ww] + fx * (rows[:, :, sx - 1:sx - 1 + ww] - rows[:, :, sx:sx + ww])
        out = cols[:, 1:] + fy * (cols[:, :-1] - cols[:, 1:])
        out += eps
        return np.log(out, out=out).reshape(n, -1)

    window = (slice(y0, y1), slice(x0, x1))
    c_off = thresholds[0][window].ravel().astype(np.float64)
    c_on = thresholds[1][window].ravel().astype(np.float64)
    level_prev = log_intensity(0)
    # The reference is float64: with float32, rounding in ``ref += n * c`` can leave a residual
    # of exactly one threshold, which would fire a spurious event on the next, unchanged step.
    ref = level_prev.astype(np.float64)
    rec: dict[str, list[np.ndarray]] = {k: [] for k in ("idx", "n", "pol", "step", "a", "b", "c")}
    for k in range(1, len(path)):
        level = log_intensity(k)
        diff = level - ref
        idx = np.flatnonzero((diff >= c_on) | (diff <= -c_off))  # flat index img * pixels + pixel
        if idx.size:
            pix = idx % c_on.size
            d = diff.ravel()[idx]
            pol = d > 0
            c = np.where(pol, c_on[pix], -c_off[pix])  # signed threshold
            count = np.floor(d / c).astype(np.int64)
            rec["idx"].append(idx)
            rec["n"].append(count)
            rec["pol"].append(pol)
            rec["step"].append(np.full(idx.size, k, dtype=np.int64))
            rec["a"].append(ref.ravel()[idx] - level_prev.ravel()[idx])
            rec["b"].append(level.ravel()[idx] - level_prev.ravel()[idx])
            rec["c"].append(c)
            ref.ravel()[idx] += count * c
        level_prev = level
    if not rec["n"]:
        return np.zeros(0, EVENT_DTYPE), np.zeros(n, dtype=np.int64)
    r = {key: np.concatenate(v) for key, v in rec.items()}
    # one row per event: the j-th crossing (j = 1..n) of a pixel within its step
    row = np.repeat(np.arange(r["n"].size), r["n"])
    first = np.cumsum(r["n"]) - r["n"]
    j = np.arange(row.size) - first[row] + 1
    frac = np.clip((r["a"][row] + j * r["c"][row]) / r["b"][row], 0.0, 1.0)
    t = np.rint((r["step"][row] - 1 + frac) * (config.dt_ms * 1000.0)).astype(np.int64)
    img, pix = np.divmod(r["idx"][row], c_on.size)
    order = np.argsort(img * (config.duration_us + 1) + t, kind="stable")
    events = np.empty(row.size, dtype=EVENT_DTYPE)
    events["x"] = pix[order] % ww + x0
    events["y"] = pix[order] // ww + y0
    events["t"] = t[order]
    events["p"] = r["pol"][row][order]
    return events, np.bincount(img, minlength=n).astype(np.int64)
