"""ADBench's 47 "Classical" tabular anomaly-detection sets (Han et al., NeurIPS 2022), registered by name.

Naming convention: ``adbench:NAME``, where NAME is the ADBench file name without its number and ``.npz``, in
lower case (``6_cardio.npz`` -> ``adbench:cardio``, ``22_magic.gamma.npz`` -> ``adbench:magic.gamma``,
``31_satimage-2.npz`` -> ``adbench:satimage-2``). Each loads from ``$VAEKIT_DATA/adbench/N_NAME.npz`` (arrays
``X``, ``y`` with 1 = anomaly), the file exactly as the ADBench repository ships it; when it is absent the error
names the file and its public source (``vaekit download adbench:NAME`` fetches it into the cache).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..errors import DataError
from . import sources
from .dataset import Dataset
from .registry import DatasetSpec, register

#: ADBench's Classical files, in ADBench's numbering (adbench/datasets/Classical/ of Minqi824/ADBench)
ADBENCH_FILES: tuple[str, ...] = (
    "1_ALOI", "2_annthyroid", "3_backdoor", "4_breastw", "5_campaign", "6_cardio", "7_Cardiotocography",
    "8_celeba", "9_census", "10_cover", "11_donors", "12_fault", "13_fraud", "14_glass", "15_Hepatitis",
    "16_http", "17_InternetAds", "18_Ionosphere", "19_landsat", "20_letter", "21_Lymphography",
    "22_magic.gamma", "23_mammography", "24_mnist", "25_musk", "26_optdigits", "27_PageBlocks", "28_pendigits",
    "29_Pima", "30_satellite", "31_satimage-2", "32_shuttle", "33_skin", "34_smtp", "35_SpamBase", "36_speech",
    "37_Stamps", "38_thyroid", "39_vertebral", "40_vowels", "41_Waveform", "42_WBC", "43_WDBC", "44_Wilt",
    "45_wine", "46_WPBC", "47_yeast",
)
PREFIX = "adbench:"
#: train / validation / test fractions for ``vaekit fit`` (the benchmark uses its own stratified 70/30 split)
SPLIT = (0.6, 0.1, 0.3)


def dataset_name(stem: str) -> str:
    """``"6_cardio"`` -> ``"adbench:cardio"``."""
    return PREFIX + stem.split("_", 1)[1].lower()


#: registered name -> ADBench file stem
ADBENCH_SETS: dict[str, str] = {dataset_name(stem): stem for stem in ADBENCH_FILES}


def _build(spec: DatasetSpec, arrays: dict[str, np.ndarray]) -> Dataset:
    """``X``/``y`` as shipped by ADBench (or ``x``/``y`` as written by ``vaekit download``) as a Dataset."""
    x = arrays.get("X", arrays.get("x"))
    y = arrays.get("y")
    if x is None or y is None:
        raise DataError(f"{spec.filename} has arrays {sorted(arrays)}; an ADBench file has X and y")
    return Dataset(spec.name, np.asarray(x, dtype=np.float64), np.asarray(y).astype(np.int8).ravel(),
                   split=SPLIT)


for _name, _stem in ADBENCH_SETS.items():
    register(DatasetSpec(
        _name, f"adbench/{_stem}.npz", f"ADBench Classical set {_stem} (Han et al., 2022)", split=SPLIT,
        download=partial(sources.adbench_npz, f"{_stem}.npz"), source=sources.ADBENCH_URL.format(f"{_stem}.npz"),
        build=_build,
    ))
