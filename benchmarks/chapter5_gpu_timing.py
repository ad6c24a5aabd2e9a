"""GPU wall time of the chapter-5 USPS->MNIST runs at the full budget's settings, 3 epochs each (issue 14).

Run on a CUDA machine from the repository root: ``PYTHONPATH=src VAEKIT_DATA=DIR OUT=DIR python3
benchmarks/chapter5_gpu_timing.py`` (``DRY=1``: a tiny CPU check of the script). Writes ``OUT/ch5-gpu.jsonl``.
"""
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor


def one(method):
    os.environ["VAEKIT_DEVICE"] = "cuda"
    from vaekit.experiments.chapter5 import train_one
    from vaekit.experiments.chapter5.grid import FULL
    config = {**FULL, "dataset": "usps->mnist", "method": method, "seed": 0, "epochs": 3, "patience": None,
              "tsne": False, "checkpoints": []}
    config.pop("alphas")
    if os.environ.get("DRY"):
        from vaekit.experiments import log_normaliser
        log_normaliser.ANNEALING_STEPS = 20
        os.environ["VAEKIT_DEVICE"] = "cpu"
        config.update(epochs=1, max_source=300, max_val=100, max_test=100, ratio_epochs=1)
    if method == "vfae":
        config["mmd_alpha"] = 1.0
    started = time.perf_counter()
    m = train_one(config)
    h = [r for r in m["history"] if "epoch" in r]
    return {"method": method, "wall_seconds": time.perf_counter() - started, "epochs": len(h),
            "knn_accuracy": m.get("knn_accuracy"), "test_log_likelihood": m.get("test_log_likelihood"),
            "log_normaliser_annealed": m.get("log_normaliser_annealed"), "n_train": m.get("n_train"),
            "n_test": m.get("n_test"), "train_seconds": m.get("train_seconds")}

if __name__ == "__main__":
    import multiprocessing as mp
    mp.set_start_method("spawn")
    with ProcessPoolExecutor(5) as pool:
        out = list(pool.map(one, ["proposed"] if os.environ.get("DRY") else ["vae", "cvae", "beta-cvae", "vfae",
                                                                            "proposed"]))
    for r in out:
        print(json.dumps(r))
    with open(os.path.join(os.environ["OUT"], "ch5-gpu.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in out)
