"""Datasets: importing this package registers every built-in dataset."""

from mpdsnn.data import digits, digits_dvs  # noqa: F401  (registers "digits" and "digits-dvs")
from mpdsnn.data.registry import (
    DataConfig,
    DatasetInfo,
    DataSplits,
    dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
)

__all__ = ["DataConfig", "DatasetInfo", "DataSplits", "dataset_info", "list_datasets",
           "load_dataset", "register_dataset"]

from mpdsnn.data import cifar, events  # noqa: E402,F401  (registers cifar10/100, cifar10-dvs, dvs-gesture, nmnist)
