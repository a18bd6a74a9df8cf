"""Dataset ``digits-dvs``: the ``digits`` split turned into events by the emulator, framed by tonic.

Why: the event code path (structured event arrays -> ``tonic.transforms.ToFrame`` -> frames)
must run without a download. Each digit becomes an N-MNIST-like recording (three saccades,
300 ms, a few thousand events on a 34x34 sensor; see :mod:`mpdsnn.data.emulator`) and is framed
on access exactly as a real recording would be: ``ToFrame(sensor_size=(34, 34, 2),
n_time_bins=T)`` (``framing="time"``, default) or ``n_event_bins=T`` (``framing="events"``).
Note tonic's time bins span ``floor((t_last - t_first) / T)`` microseconds each, so the last
event(s) of a recording fall outside the last bin, as with real data; event bins drop
``n_events % T`` events.

Samples: ``x`` ``[T, 2, 34, 34]`` float32 event counts (channel 0 = OFF, 1 = ON), ``y`` int.
Train augmentation: a roll of up to 2 pixels in x and y (flipping would turn some digits into
others). Split: identical to ``digits`` for the same seed and subsets.

Options: ``framing`` ("time" | "events"), ``disk_cache`` (bool, default False: keep generated
events as ``.npz`` under ``DataConfig.root/digits-dvs/``), and any :class:`EmulatorConfig`
field except ``sensor_size`` (e.g. ``threshold``, ``amplitude_px``, ``seed``). Events depend on
the emulator parameters and on the digits generated, never on ``T`` or the framing, so the cache
key holds exactly those and framing happens after the cache.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tonic.transforms import ToFrame
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from mpdsnn.data.digits import (
    apply_subsets,
    digits_split,
    fingerprint,
    raw_digits,
    split_notes,
)
from mpdsnn.data.emulator import EVENT_DTYPE, EmulatorConfig, emulate
from mpdsnn.data.registry import DataConfig, DatasetInfo, DataSplits, register_dataset
from mpdsnn.data.splits import check_options
from mpdsnn.errors import UserError
from mpdsnn.files import atomic_write_bytes

log = logging.getLogger(__name__)

SENSOR = (34, 34)
ROLL_PX = 2
FRAMINGS = ("time", "events")
_PROGRESS_SLICE = 256  # images per progress step
CACHE_VERSION = "1"  # bump when the emulator's output changes for the same parameters

INFO = DatasetInfo(
    embedded=True,
    name="digits-dvs",
    kind="events",
    input_shape=(2, *SENSOR),
    num_classes=10,
    default_T=8,
    default_model="convnet",
    description="the digits split turned into N-MNIST-like events by a documented event-camera "
                "emulator (no download), framed with tonic ToFrame",
    model_options={"input_size": SENSOR[0]},
)

_EMULATOR_OPTIONS = {f.name: f.default for f in dataclasses.fields(EmulatorConfig)
                     if f.name != "sensor_size"}
_OPTIONS = {"framing": "time", "disk_cache": False, **_EMULATOR_OPTIONS}
_MEMORY: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # cache key -> (events, offsets)
_MEMORY_ENTRIES = 4  # a run needs one; tests and notebooks that vary parameters stay bounded


def emulator_config(options: dict[str, Any]) -> EmulatorConfig:
    """The emulator configuration these dataset options ask for (sensor fixed at 34x34)."""
    opts = check_options("digits-dvs", options, _OPTIONS)
    values: dict[str, Any] = {}
    for name, default in _EMULATOR_OPTIONS.items():
        value = opts[name]
        try:
            if name == "waypoints":
                coerced: Any = tuple((float(x), float(y)) for x, y in value)
            else:
                coerced = type(default)(value)
                if isinstance(value, bool) or coerced != float(value):
                    raise ValueError(value)
        except (TypeError, ValueError):
            raise UserError(f"digits-dvs option {name} must be like {default!r}, "
                            f"got {value!r}") from None
        values[name] = coerced
    return EmulatorConfig(sensor_size=SENSOR, **values)


def framing(options: dict[str, Any], T: int) -> ToFrame:
    """tonic's frame transform for ``T`` bins of equal time or equal event count."""
    kind = check_options("digits-dvs", options, _OPTIONS)["framing"]
    if kind not in FRAMINGS:
        raise UserError(f"digits-dvs option framing must be one of {', '.join(FRAMINGS)}, "
                        f"got {kind!r}")
    size = (*SENSOR, 2)
    if kind == "time":
        return ToFrame(sensor_size=size, n_time_bins=T)
    return ToFrame(sensor_size=size, n_event_bins=T)


def cache_key(config: EmulatorConfig, indices: np.ndarray) -> str:
    """Identifies the events of these digits under this emulator: every parameter, the source
    pixels, the indices and the emulator version."""
    images, _ = raw_digits()
    return fingerprint(CACHE_VERSION, repr(config), images.astype(np.uint8).tobytes(),
                       np.asarray(indices, dtype=np.int64).tobytes())


def digit_events(config: EmulatorConfig, indices: np.ndarray, root: Path | None = None
                 ) -> tuple[np.ndarray, np.ndarray, str]:
    """Events of the digits ``indices`` (sorted): ``(events, offsets, source)``, recording i of
    ``indices`` being ``events[offsets[i]:offsets[i + 1]]``; ``source`` is "memory", "disk" or
    "generated". Cached in memory, and on disk under ``root`` when given."""
    key = cache_key(config, indices)
    if key in _MEMORY:
        return (*_MEMORY[key], "memory")
    path = None if root is None else Path(root) / "digits-dvs" / f"events-{key}.npz"
    loaded = _read_cache(path, key) if path is not None else None
    if loaded is not None:
        _remember(key, loaded)
        return (*loaded, "disk")
    images, _ = raw_digits()
    start = time.perf_counter()
    log.info("emulating %s digits as events (once: cached%s)...", f"{len(indices):,}",
             f" in {path.parent}" if path is not None else " in memory")
    events, offsets = _emulate_with_progress(images[indices] / 16.0, config)
    log.info("... emulated %s digits in %.1f s (%.0f events per digit)", f"{len(indices):,}",
             time.perf_counter() - start, len(events) / max(len(indices), 1))
    if path is not None:
        _write_cache(path, key, events, offsets)
    _remember(key, (events, offsets))
    return events, offsets, "generated"


def _emulate_with_progress(images: np.ndarray, config: EmulatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """:func:`emulate` in slices under a progress bar (shown on a terminal only): the full set
    takes seconds. Each image's events depend on that image alone, so slicing changes nothing."""
    parts = []
    with tqdm(total=len(images), desc="emulating events", unit="digit", leave=False, disable=None) as bar:
        for i in range(0, len(images), _PROGRESS_SLICE):
            parts.append(emulate(images[i:i + _PROGRESS_SLICE], config))
            bar.update(len(images[i:i + _PROGRESS_SLICE]))
    if not parts:
        return emulate(images, config)
    events = np.concatenate([e for e, _ in parts])
    counts = np.concatenate([np.diff(o) for _, o in parts])
    return events, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _remember(key: str, value: tuple[np.ndarray, np.ndarray]) -> None:
    _MEMORY[key] = value
    while len(_MEMORY) > _MEMORY_ENTRIES:
        del _MEMORY[next(iter(_MEMORY))]  # oldest first


def _read_cache(path: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != key:
                return None
            events, offsets = f["events"], f["offsets"]
            if events.dtype != EVENT_DTYPE:
                return None
            return events, offsets
    except (OSError, KeyError, ValueError) as err:
        log.warning("ignoring unreadable event cache %s (%s); regenerating", path, err)
        return None


def _write_cache(path: Path, key: str, events: np.ndarray, offsets: np.ndarray) -> None:
    """Atomic, so parallel runs never read half a file."""
    atomic_write_bytes(path, lambda f: np.savez(f, key=key, events=events, offsets=offsets))


class EventRecordings(Dataset):
    """Event recordings framed on access: ``x`` ``[T, 2, 34, 34]`` float32, ``y`` int.

    Recording i is ``events[starts[i]:stops[i]]`` (views into a shared array, no copy).
    ``roll`` > 0 rolls the frames by up to ``roll`` pixels in x and y (torch's global RNG)."""

    def __init__(self, events: np.ndarray, starts: np.ndarray, stops: np.ndarray, labels: np.ndarray,
                 to_frame: ToFrame, roll: int = 0) -> None:
        self.events, self.starts, self.stops, self.labels = events, starts, stops, labels
        self.to_frame, self.roll = to_frame, roll

    def __len__(self) -> int:
        return len(self.labels)

    def recording(self, i: int) -> np.ndarray:
        """The raw structured events of sample i, sorted by ``t``."""
        return self.events[self.starts[i]:self.stops[i]]

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x = torch.from_numpy(np.asarray(self.to_frame(self.recording(i)), dtype=np.float32))
        if self.roll:
            dy, dx = torch.randint(-self.roll, self.roll + 1, (2,)).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        return x, int(self.labels[i])


@register_dataset(INFO)
def build_digits_dvs(config: DataConfig) -> DataSplits:
    options = check_options("digits-dvs", config.options, _OPTIONS)
    if not isinstance(options["disk_cache"], bool):
        raise UserError("digits-dvs option disk_cache must be true or false, "
                        f"got {options['disk_cache']!r}")
    emu = emulator_config(config.options)
    to_frame = framing(config.options, config.T)
    split = apply_subsets(digits_split(config.seed), config)
    wanted = np.unique(np.concatenate([split.train, split.val, split.test]))
    events, offsets, source = digit_events(emu, wanted, config.root if options["disk_cache"] else None)
    images, labels = raw_digits()

    def subset(idx: np.ndarray, roll: int = 0) -> EventRecordings:
        pos = np.searchsorted(wanted, idx)
        return EventRecordings(events, offsets[pos], offsets[pos + 1], labels[idx], to_frame, roll)

    emu_params = json.loads(json.dumps(dataclasses.asdict(emu)))  # tuples -> lists
    return DataSplits(
        train=subset(split.train, ROLL_PX if config.augment else 0),
        val=subset(split.val),
        test=subset(split.test),
        fingerprint=fingerprint(images.astype(np.uint8).tobytes(), labels.tobytes(), split.digest(),
                                repr(emu), f"T={config.T}", f"framing={options['framing']}"),
        notes={"source": "sklearn.datasets.load_digits + mpdsnn.data.emulator",
               "split": split_notes(split, config.seed), "emulator": emu_params,
               "framing": options["framing"], "T": config.T, "events_source": source,
               "events_per_sample_mean": float(len(events) / max(len(wanted), 1)),
               "input_shape": list(INFO.input_shape), "model_options": dict(INFO.model_options)},
    )
