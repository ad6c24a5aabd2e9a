"""Data: the registry of named data sets, user files, splits and preprocessing."""

from . import adbench  # noqa: F401  (registers the 47 ADBench Classical sets as adbench:NAME)
from . import images  # noqa: F401  (registers the image data sets of chapter 4)
from . import transfer  # noqa: F401  (registers the multi-task data sets and protocols of chapter 5)
from .dataset import (Dataset, Preprocessor, check_task_count, split_indices, task_indices, to_tensor,
                      validate_matrix)
from .files import from_array, load_file
from .recorded import columns_info, training_data
from .registry import DATASETS, DatasetSpec, dataset_status, load_arrays, load_dataset, register
from .sources import cache_dir, data_dir

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "Preprocessor",
    "cache_dir",
    "columns_info",
    "data_dir",
    "dataset_status",
    "from_array",
    "load_arrays",
    "load_dataset",
    "load_file",
    "register",
    "check_task_count",
    "split_indices",
    "task_indices",
    "to_tensor",
    "training_data",
    "validate_matrix",
]
