"""Writers of tiny datasets in the REAL on-disk formats that torchvision and tonic read, for tests
(generated into tmp_path, never committed), plus a loopback HTTP server and a refusing URL to
exercise the real download code without a network.

- CIFAR-10/100: ``cifar-10-batches-py`` / ``cifar-100-python`` pickled batches. torchvision
  checks the md5 of every file against constants in its class (``train_list``, ``test_list``,
  ``meta``); :func:`patch_cifar_md5s` sets those class attributes (pytest ``monkeypatch``, undone
  after the test) to the md5s of the files we wrote, which is exactly what torchvision reads.
- ImageFolder: ``<split>/<class>/<n>.png|jpg``.
- CIFAR10-DVS: AEDAT 4 files as tonic's class reads them (via the ``aedat`` package): the magic
  line, a size-prefixed flatbuffer IOHeader (uncompressed) whose XML description declares one
  event stream, then packets ``[stream id u32][size u32][size-prefixed EventPacket flatbuffer]``.
  The flatbuffers are laid out by hand (see :func:`_event_packet`), so no flatbuffers dependency.
- DVS-Gesture: tonic's preprocessed layout ``ibmGestureTrain/userNN_<lighting>/<label>.npy``,
  each ``[events, 4]`` with columns x, y, p, t (ms).
- N-MNIST: ``.bin`` files of 40-bit events: x (8 bits), y (8 bits), p (1 bit), t (23 bits, us).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import pickle
import socket
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- CIFAR pickles

def cifar_image(index: int) -> np.ndarray:
    """A deterministic 32x32 RGB uint8 image ``[32, 32, 3]``: pixel (0, 0) is (index % 256,
    100, 200), the rest a gradient, so a test can check decoding and normalisation."""
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[..., 0] = (np.arange(32)[None, :] * 8 + index) % 256
    image[..., 1] = np.arange(32)[:, None] * 4
    image[..., 2] = 200
    image[0, 0] = (index % 256, 100, 200)
    return image


def _batch(indices: Sequence[int], labels: Sequence[int], label_key: str, extra: dict) -> dict:
    data = np.stack([cifar_image(i).transpose(2, 0, 1).reshape(-1) for i in indices])
    return {"batch_label": "fixture", label_key: list(labels), "data": data,
            "filenames": [f"img_{i}.png" for i in indices], **extra}


def write_cifar10(root: Path, per_batch: int = 4, n_test: int = 6) -> dict[str, str]:
    """``root/cifar-10-batches-py`` with 5 train batches of ``per_batch`` images, a test batch and
    ``batches.meta``. Returns {file name: md5}. Labels cycle over the 10 classes."""
    from mpdsnn.data.cifar import CIFAR10_CLASSES

    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for b in range(5):
        idx = list(range(b * per_batch, (b + 1) * per_batch))
        files[f"data_batch_{b + 1}"] = _batch(idx, [i % 10 for i in idx], "labels", {})
    idx = list(range(1000, 1000 + n_test))
    files["test_batch"] = _batch(idx, [i % 10 for i in idx], "labels", {})
    files["batches.meta"] = {"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": per_batch,
                             "num_vis": 3072}
    return _dump(folder, files)


def write_cifar100(root: Path, n_train: int = 20, n_test: int = 10) -> dict[str, str]:
    """``root/cifar-100-python`` with ``train``, ``test`` and ``meta`` (fine and coarse labels)."""
    from mpdsnn.data.cifar import CIFAR100_CLASSES

    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, idx in (("train", range(n_train)), ("test", range(2000, 2000 + n_test))):
        fine = [(i * 7) % 100 for i in idx]
        files[name] = _batch(list(idx), fine, "fine_labels", {"coarse_labels": [f // 5 for f in fine]})
    files["meta"] = {"fine_label_names": list(CIFAR100_CLASSES),
                     "coarse_label_names": [f"super{k}" for k in range(20)]}
    return _dump(folder, files)


def _dump(folder: Path, files: dict[str, dict]) -> dict[str, str]:
    md5s = {}
    for name, content in files.items():
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))
        md5s[name] = md5_of(folder / name)
    return md5s


def patch_cifar_md5s(monkeypatch, cls: type, md5s: dict[str, str]) -> None:
    """Point torchvision's expected md5s (class attributes) at the files we wrote."""
    monkeypatch.setattr(cls, "train_list", [[n, md5s[n]] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, md5s[n]] for n, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5s[cls.meta["filename"]]})


# ---------------------------------------------------------------- ImageFolder

def write_image_folder(root: Path, classes: Sequence[str], per_class: int = 2,
                       splits: Sequence[str] = ("train", "test")) -> None:
    """``root/<split>/<class>/<k>.png`` (even k) or ``.jpg`` (odd k), 32x32 RGB."""
    for split in splits:
        for c, name in enumerate(classes):
            folder = Path(root) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                image = Image.fromarray(cifar_image(c * 10 + k))
                if k % 2 == 0:
                    image.save(folder / f"{k:04d}.png")
                else:
                    image.save(folder / f"{k:04d}.jpg", quality=95)


# ---------------------------------------------------------------- AEDAT 4 (CIFAR10-DVS)

AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
_EVENT = struct.Struct("<qhh?3x")  # flatbuffers struct Event {t: int64; x: int16; y: int16; on: bool}


def _ioheader(width: int, height: int) -> bytes:
    """Size-prefixed flatbuffer ``Ioheader`` with only ``description`` set (compression None,
    file_data_position -1 by default)."""
    xml = ('<dv version="2.0"><node name="outInfo"><node name="0">'
           '<attr key="typeIdentifier" type="string">EVTS</attr><node name="info">'
           f'<attr key="sizeX" type="int">{width}</attr>'
           f'<attr key="sizeY" type="int">{height}</attr>'
           '</node></node></node></dv>').encode()
    # after the u32 size prefix: [0] root offset -> table at 20, [4] "IOHE",
    # [8] vtable (size 10, table size 8, fields: compression 0, file_data_position 0,
    # description at +4), pad, [20] table (soffset 12 back to vtable, uoffset to string),
    # [28] string (length, bytes, NUL), padded to 4
    body = struct.pack("<I4sHHHHH2x", 20, b"IOHE", 10, 8, 0, 0, 4)
    body += struct.pack("<iI", 20 - 8, 28 - 24) + struct.pack("<I", len(xml)) + xml + b"\0"
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<I", len(body)) + body


def _event_packet(events: np.ndarray) -> bytes:
    """Size-prefixed flatbuffer ``EventPacket {elements: [Event]}`` with identifier EVTS.

    Positions counted from the start of the size prefix, so the 16-byte Event structs start
    8-byte aligned at 32: [4] root offset -> table at 20, [8] "EVTS", [12] vtable (6, 8,
    field at +4), pad, [20] table (soffset 8, uoffset 4 -> vector), [28] vector length, [32]
    elements."""
    head = struct.pack("<II4sHHH2xiII", 0, 20 - 4, b"EVTS", 6, 8, 4, 20 - 12, 28 - 24, len(events))
    body = b"".join(_EVENT.pack(int(e["t"]), int(e["x"]), int(e["y"]), bool(e["p"])) for e in events)
    buffer = head + body
    return struct.pack("<I", len(buffer) - 4) + buffer[4:]


def write_aedat4(path: Path, events: np.ndarray, packets: int = 2, size: int = 128) -> None:
    """Write ``events`` (fields t, x, y, p) as an AEDAT 4 file split over ``packets`` packets."""
    chunks = [_event_packet(chunk) for chunk in np.array_split(events, packets)]
    payload = b"".join(struct.pack("<II", 0, len(c)) + c for c in chunks)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(AEDAT4_MAGIC + _ioheader(size, size) + payload)


def random_events(n: int, size: int, seed: int, t_step: int = 10,
                  fields: tuple[str, str, str, str] = ("t", "x", "y", "p")) -> np.ndarray:
    """``n`` events with increasing timestamps on a ``size`` x ``size`` sensor."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype([(fields[0], np.int64), (fields[1], np.int64), (fields[2], np.int64),
                      (fields[3], np.int64)])
    events = np.zeros(n, dtype=dtype)
    events["t"] = np.arange(n) * t_step + 1
    events["x"] = rng.integers(0, size, n)
    events["y"] = rng.integers(0, size, n)
    events["p"] = rng.integers(0, 2, n)
    return events


def write_cifar10dvs(folder: Path, per_class: int, events: int = 40,
                     first: int | None = None) -> list[Path]:
    """``folder/<class>/cifar10_<class>_<k>.aedat4`` for the 10 classes (tonic's layout), ``k``
    from ``first``; by default numbered across 900, where TET's split starts the test files, so
    that the default split has files on both sides."""
    if first is None:
        first = 900 - (per_class + 1) // 2
    from mpdsnn.data.event_sources import CIFAR10DVS_CLASSES

    template = {}
    paths = []
    for c, name in enumerate(CIFAR10DVS_CLASSES):
        for k in range(first, first + per_class):
            path = Path(folder) / name / f"cifar10_{name}_{k}.aedat4"
            if k >= first + 3 and c in template:  # most files share bytes: fast to write 1,000
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(template[c])
            else:
                write_aedat4(path, random_events(events, 128, seed=c * 1000 + k))
                template[c] = path.read_bytes()
            paths.append(path)
    return paths


# ---------------------------------------------------------------- DVS-Gesture

def write_gesture(folder: Path, users: Sequence[int], split: str, labels: int = 11,
                  events: int = 64) -> list[Path]:
    """``folder/<split>/userNN_fluorescent/<label>.npy`` arrays ``[events, 4]`` (x, y, p, t ms)."""
    paths = []
    for user in users:
        for label in range(labels):
            ev = random_events(events, 128, seed=user * 100 + label)
            array = np.stack([ev["x"], ev["y"], ev["p"], ev["t"] // 10], axis=1).astype(np.int64)
            path = Path(folder) / split / f"user{user:02d}_fluorescent" / f"{label}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, array)
            paths.append(path)
    return paths


# ---------------------------------------------------------------- N-MNIST

def encode_nmnist(x: Sequence[int], y: Sequence[int], t: Sequence[int], p: Sequence[int]) -> bytes:
    """40 bits per event, big-endian fields: x (8), y (8), p (1), t (23, microseconds)."""
    out = bytearray()
    for xi, yi, ti, pi in zip(x, y, t, p):
        assert 0 <= ti < 2 ** 23
        out += bytes([xi, yi, (pi << 7) | (ti >> 16), (ti >> 8) & 0xFF, ti & 0xFF])
    return bytes(out)


def write_nmnist(folder: Path, per_digit: dict[str, int], events: int = 30) -> list[Path]:
    """``folder/<Train|Test>/<digit>/<NNNNN>.bin``; ``per_digit`` maps split to files per digit.
    Files after the third of a digit repeat its bytes (fast to write 20,000)."""
    paths = []
    for split, count in per_digit.items():
        for digit in range(10):
            folder_d = Path(folder) / split / str(digit)
            folder_d.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                if k < 3:
                    ev = random_events(events, 34, seed=digit * 10000 + k, t_step=1000)
                    data = encode_nmnist(ev["x"], ev["y"], ev["t"], ev["p"])
                path = folder_d / f"{k + 1:05d}.bin"
                path.write_bytes(data)
                paths.append(path)
    return paths


# ---------------------------------------------------------------- network stand-ins

def refused_url(name: str) -> str:
    """A loopback URL whose port was just free: connecting is refused at once (no timeout)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


@contextlib.contextmanager
def serve_directory(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a loopback port for the duration of the block; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep test output clean
        pass
