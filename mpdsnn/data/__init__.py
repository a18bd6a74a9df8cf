"""Datasets: one registry (:mod:`mpdsnn.data.registry`); each dataset's module is imported when
that dataset is first asked for, so a run loads only what it trains on."""

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
