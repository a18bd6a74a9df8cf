"""Published accuracies this project reproduces or compares against, each with its source.

An entry names the method by this project's registry name (``ds-atgo``, ``mpd-agl``, ``tet``,
``fixed`` = STBP-tdBN, ``plif``), the dataset and model by this project's names, and how the
authors chose the reported number:

- ``best-test``: the maximum test accuracy over epochs (the official code keeps it; the basis
  field says which file);
- ``last-epoch``: the accuracy after the final epoch;
- ``unstated``: neither the text nor code checked here says; compared as best-test by default.

``basis`` says how the selection rule was established. The DS-ATGO and MPD-AGL numbers are
those quoted in the project's SPEC.md; the TET, STBP-tdBN and PLIF numbers were entered from
the papers' tables but not re-read against the paper text when added (no searchable copy of the
tables was at hand): check them against the cited table before quoting them elsewhere. Add an
entry only with a source precise enough for a reader to find the number.

Seed counts: SPEC.md gives mean +- std for the DS-ATGO entries but no entry's seed count, so
``n_seeds`` is None (unknown) throughout; :mod:`mpdsnn.verdicts.published` says how an unknown
count enters its test. MPD-AGL, STBP-tdBN and PLIF give a single number (``std`` None).
"""

from __future__ import annotations

from dataclasses import dataclass

SELECTION_RULES = ("best-test", "last-epoch", "unstated")


@dataclass(frozen=True)
class PublishedResult:
    method: str
    dataset: str
    model: str
    T: int
    accuracy: float  # top-1 test accuracy, percent
    std: float | None  # as published (over seeds); None when the paper gives one number
    n_seeds: int | None  # None: not stated
    source: str  # paper, table, architecture as the paper names it
    selection: str  # one of SELECTION_RULES
    basis: str  # how the selection rule is known

    def __post_init__(self) -> None:
        if self.selection not in SELECTION_RULES:
            raise ValueError(f"selection must be one of {SELECTION_RULES}, got {self.selection!r}")


_DSATGO = ("Jiang, Xu, Fan, Yan, 'Dual-Stage Synergistic Learning via Forward Adaptive Threshold "
           "and Backward Gradient Optimization for Spiking Neural Networks', AAAI 2026 (arXiv "
           "2511.13050), headline results, {arch}; mean +- std over seeds as quoted in the "
           "project's SPEC.md section 6 (table number and seed count not checked here)")
_MPDAGL = ("MPD-AGL, 'Adaptive Gradient Learning for Spiking Neural Networks by Exploiting "
           "Membrane Potential Dynamics', IJCAI 2025 (arXiv 2505.11863), results, {arch}; as "
           "quoted in the project's SPEC.md section 6 (no std quoted there)")
_TET = ("Deng, Li, Zhang, Gu, 'Temporal Efficient Training of Spiking Neural Network via "
        "Gradient Re-weighting', ICLR 2022 (arXiv 2202.11946), comparison-with-SOTA table, "
        "TET row, {arch} (mean +- std)")
_TDBN = ("Zheng, Wu, Deng, Hu, Li, 'Going Deeper With Directly-Trained Larger Spiking Neural "
         "Networks' (STBP-tdBN), AAAI 2021, results table, {arch}; a single number")
_PLIF = ("Fang, Yu, Chen, Masquelier, Huang, Tian, 'Incorporating Learnable Membrane Time "
         "Constant to Enhance Learning of Spiking Neural Networks' (PLIF), ICCV 2021, accuracy "
         "table, the authors' own {arch} network; a single number")

_BEST_CODE = "official code {repo} {file} keeps the maximum test accuracy over epochs ({what})"
_DSATGO_CODE = _BEST_CODE.format(repo="github.com/jqjiang1999/DS-ATGO", file="main.py",
                                 what="`best_acc`; ResNet-19 with a --data_type switch")
_MPDAGL_CODE = _BEST_CODE.format(repo="github.com/Stay-Sane/MPD-AGL", file="main.py",
                                 what="`best_acc`; its ResNet-19 CIFAR script")
_TET_CIFAR_CODE = _BEST_CODE.format(
    repo="github.com/brain-intelligence-lab/temporal_efficient_training",
    file="main_training_distribute.py", what="`best_acc1`; ResNet-19, CIFAR")
_TET_DVS_CODE = _BEST_CODE.format(
    repo="github.com/brain-intelligence-lab/temporal_efficient_training",
    file="main_training_parallel.py", what="`best_acc`; VGGSNN, CIFAR10-DVS")
_NO_CODE = "the official code covers ResNet-19 on CIFAR only; the paper text was not checked"
_UNSTATED = "not stated in what was checked (paper text not searchable here; no official script)"


def _entry(method: str, dataset: str, model: str, T: int, accuracy: float, std: float | None,
           source: str, selection: str, basis: str) -> PublishedResult:
    return PublishedResult(method, dataset, model, T, accuracy, std, None, source, selection,
                           basis)


_R19, _VGG = "ResNet-19", "VGGSNN"
PUBLISHED: tuple[PublishedResult, ...] = (
    # DS-ATGO, the method under test
    _entry("ds-atgo", "cifar10", "resnet19", 2, 96.91, 0.12, _DSATGO.format(arch=_R19),
           "best-test", _DSATGO_CODE),
    _entry("ds-atgo", "cifar100", "resnet19", 2, 80.59, 0.17, _DSATGO.format(arch=_R19),
           "best-test", _DSATGO_CODE),
    _entry("ds-atgo", "cifar10-dvs", "vggsnn", 10, 83.70, 0.41, _DSATGO.format(arch=_VGG),
           "unstated", _NO_CODE),
    _entry("ds-atgo", "imagenet", "resnet18", 4, 68.86, 0.25, _DSATGO.format(arch="ResNet-18"),
           "unstated", _NO_CODE),
    # MPD-AGL, the predecessor
    _entry("mpd-agl", "cifar10", "resnet19", 2, 96.18, None, _MPDAGL.format(arch=_R19),
           "best-test", _MPDAGL_CODE),
    _entry("mpd-agl", "cifar100", "resnet19", 2, 78.84, None, _MPDAGL.format(arch=_R19),
           "best-test", _MPDAGL_CODE),
    _entry("mpd-agl", "cifar10-dvs", "vggsnn", 10, 82.50, None, _MPDAGL.format(arch=_VGG),
           "unstated", "the official main.py builds ResNet-19 only; paper text not checked"),
    # TET
    *(_entry("tet", "cifar10", "resnet19-std", T, acc, std, _TET.format(arch=_R19), "best-test",
             _TET_CIFAR_CODE) for T, acc, std in ((2, 94.16, 0.03), (4, 94.44, 0.08),
                                                  (6, 94.50, 0.07))),
    *(_entry("tet", "cifar100", "resnet19-std", T, acc, std, _TET.format(arch=_R19), "best-test",
             _TET_CIFAR_CODE) for T, acc, std in ((2, 72.87, 0.10), (4, 74.47, 0.15),
                                                  (6, 74.72, 0.28))),
    _entry("tet", "cifar10-dvs", "vggsnn", 10, 83.17, 0.15, _TET.format(arch=_VGG), "best-test",
           _TET_DVS_CODE),
    # STBP-tdBN, registry name `fixed`
    *(_entry("fixed", "cifar10", "resnet19-std", T, acc, None, _TDBN.format(arch=_R19), "unstated",
             _UNSTATED) for T, acc in ((2, 92.34), (4, 92.92), (6, 93.16))),
    _entry("fixed", "cifar10-dvs", "resnet19-std", 10, 67.80, None, _TDBN.format(arch=_R19),
           "unstated", _UNSTATED),
    # PLIF: the authors' own networks, which this project does not build (always "not run")
    _entry("plif", "cifar10", "plif-net", 8, 93.50, None, _PLIF.format(arch="CIFAR-10"),
           "unstated", _UNSTATED),
    _entry("plif", "cifar10-dvs", "plif-net", 20, 74.80, None, _PLIF.format(arch="CIFAR10-DVS"),
           "unstated", _UNSTATED),
)
