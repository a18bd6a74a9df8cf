"""Datasets: importing this package registers every built-in dataset."""

from mpdsnn.data.registry import (
    DataConfig,
    DatasetInfo,
    DataSplits,
    dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
)

# Importing registers: digits, digits-dvs (embedded); cifar10/100; cifar10-dvs, dvs-gesture, nmnist;
# imagenet (ImageFolder mirror).
from mpdsnn.data import cifar, digits, digits_dvs, events, imagenet  # noqa: E402,F401,I001

__all__ = ["DataConfig", "DatasetInfo", "DataSplits", "dataset_info", "list_datasets",
           "load_dataset", "register_dataset"]
