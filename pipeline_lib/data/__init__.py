"""Benchmark data: where each upstream file comes from, how it is parsed, and how it is normalized."""
from .registry import DATASETS, EVAL_SETS, SOURCES, TRAIN_SETS, DatasetSpec, Source, get_dataset

__all__ = ["DATASETS", "EVAL_SETS", "SOURCES", "TRAIN_SETS", "DatasetSpec", "Source", "get_dataset"]
