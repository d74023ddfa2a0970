#!/usr/bin/env python3
"""Print sieve's benchmark figures next to the peers' figures from the same run, with ratios.

Reads criterion's estimates (target/criterion/<group>/<bench>/new/estimates.json) and the JSON
files that the peer scripts write into PEERS_ROOT/results, and prints one Markdown table. A
ratio above 1 means sieve is faster (or, for memory, smaller). Rows whose figures are missing
are printed with the reason, so a partial run still gives a table.

    python3 scripts/bench_compare.py --criterion target/criterion --peers ~/.cache/sieve-peers/results
"""
import argparse
import json
import sys
from pathlib import Path


def criterion_seconds(roots, bench_id):
    """Return the median time per iteration of a criterion benchmark, in seconds, or None.

    `roots` are criterion output folders, searched in order."""
    for root in roots:
        path = Path(root) / bench_id / "new" / "estimates.json"
        if path.is_file():
            estimates = json.loads(path.read_text())
            return estimates["median"]["point_estimate"] * 1e-9
    return None


def load_json(folder, name):
    path = Path(folder) / name
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def dig(data, *keys):
    """Follow keys (or a predicate over list items) into nested JSON; None when absent."""
    for key in keys:
        if data is None:
            return None
        if callable(key):
            data = next((item for item in data if key(item)), None)
        elif isinstance(data, dict):
            data = data.get(key)
        else:
            return None
    return data


class Row:
    """One comparison: sieve's figure, the peer's figure, the unit, and the target ratio."""

    def __init__(self, name, sieve, peer, peer_name, unit, target, higher_is_better=False):
        self.name = name
        self.sieve = sieve
        self.peer = peer
        self.peer_name = peer_name
        self.unit = unit
        self.target = target
        self.higher_is_better = higher_is_better

    def ratio(self):
        if self.sieve is None or self.peer is None or self.sieve == 0 or self.peer == 0:
            return None
        return self.sieve / self.peer if self.higher_is_better else self.peer / self.sieve

    def cells(self):
        def show(value):
            if value is None:
                return "missing"
            return f"{value:.3g}" if value < 100 else f"{value:.0f}"

        ratio = self.ratio()
        if ratio is None:
            verdict = "not measured"
        elif self.target is None:
            verdict = "no target"
        else:
            verdict = "met" if ratio >= self.target else "missed"
        target = "" if self.target is None else f"≥ {self.target:g}×"
        ratio_text = "" if ratio is None else f"{ratio:.2f}×"
        return [self.name, f"{show(self.sieve)} {self.unit}", f"{show(self.peer)} {self.unit}",
                self.peer_name, ratio_text, target, verdict]


def per_second(seconds, items=1):
    return None if seconds is None else items / seconds


def milliseconds(seconds):
    return None if seconds is None else seconds * 1e3


def build_rows(crit, peers, pipeline, threads):
    ref256 = load_json(peers, "bench256.json")
    ref1024 = load_json(peers, "bench1024.json")
    fit = load_json(peers, "fit_timing.json")
    auroc = load_json(peers, "auroc.json")
    torch_metrics = load_json(peers, "metrics_torch.json")
    detector = load_json(peers, "detector.json")
    effnet = load_json(peers, "efficientnet_lite0.json")

    def two_threads(value):
        # The peers time the coreset and the training step at 2 threads only.
        return value if threads == 2 else None

    def fit_seconds(n):
        return dig(fit, "runs", lambda r: r["n"] == n and r["probability"], "fit_s_median")

    def torch_rate(model, batch):
        return dig(detector, "results", model, f"bs{batch}", "images_per_s")

    def effnet_rate(model, batch):
        # Torch at the thread count that sieve's detector benchmarks ran with.
        return dig(effnet, "results", model, f"threads{threads}", f"bs{batch}", "images_per_s")

    rows = [
        Row("filter stage, 256² map, 1 thread", milliseconds(criterion_seconds(crit, "filter_map/256")),
            dig(ref256, "ms", "total", "median"), "scikit-image + scikit-learn", "ms", 10),
        Row("filter stage, 1024² map, 1 thread",
            milliseconds(criterion_seconds(crit, "filter_map/1024")),
            dig(ref1024, "ms", "total", "median"), "scikit-image + scikit-learn", "ms", 4),
        Row("SVM fit with probabilities, 2,000 samples",
            criterion_seconds(crit, "svm_fit_proba/2000"), fit_seconds(2000), "scikit-learn SVC",
            "s", None),
        Row("SVM fit with probabilities, 10,000 samples",
            criterion_seconds(crit, "svm_fit_proba/10000"), fit_seconds(10000), "scikit-learn SVC",
            "s", 1),
        Row("exact AUROC, 50 M scores", criterion_seconds(crit, "auroc_exact/50000000"),
            dig(auroc, "s_median"), "scikit-learn roc_auc_score", "s", 10),
        Row("exact AUROC, 50 M scores", criterion_seconds(crit, "auroc_exact/50000000"),
            dig(torch_metrics, "binary_auroc", "s_median"), "torchmetrics, 2 threads", "s", None),
        Row("AUPRO, magnetic_tile test at 256²", criterion_seconds(crit, "aupro/magnetic_tile_256"),
            dig(torch_metrics, "aupro", lambda r: "magnetic_tile" in r["set"], "s_median"),
            "anomalib AUPRO", "s", 5),
        Row("backbone, batch 1", per_second(criterion_seconds(crit, "backbone/batch1")),
            effnet_rate("backbone_blocks0-10", 1), "torch EfficientNet-Lite0", "img/s", 1, True),
        Row("backbone, batch 8", per_second(criterion_seconds(crit, "backbone/batch8"), 8),
            effnet_rate("backbone_blocks0-10", 8), "torch EfficientNet-Lite0", "img/s", None, True),
        Row("backbone, batch 1 (other network)", per_second(criterion_seconds(crit, "backbone/batch1")),
            torch_rate("resnet18_layers1-3", 1), "torch ResNet-18 layers 1-3", "img/s", None, True),
        Row("PatchCore inference, batch 1",
            per_second(criterion_seconds(crit, "patchcore/infer_batch1")),
            effnet_rate("anomalib_patchcore", 1) or torch_rate("patchcore_resnet18", 1),
            "anomalib PatchCore" + (" (EfficientNet-Lite0)" if effnet_rate("anomalib_patchcore", 1)
                                    else " (ResNet-18)"), "img/s", 1, True),
        Row("PatchCore greedy coreset, 102,400 to 10,240 rows",
            criterion_seconds(crit, "patchcore/coreset_102400_to_10240"),
            two_threads(dig(effnet, "results", "anomalib_coreset_102400_to_10240", "seconds")
                        or dig(detector, "results", "patchcore_resnet18", "memory_bank",
                               "coreset_s")),
            "anomalib (384 dims)", "s", 20),
        Row("FastFlow inference, batch 1", per_second(criterion_seconds(crit, "fastflow/infer_batch1")),
            effnet_rate("anomalib_fastflow", 1) or torch_rate("fastflow_resnet18", 1),
            "anomalib FastFlow" + (" (EfficientNet-Lite0)" if effnet_rate("anomalib_fastflow", 1)
                                   else " (ResNet-18)"), "img/s", 1, True),
        Row("CFlow inference, batch 1", per_second(criterion_seconds(crit, "cflow/infer_batch1")),
            effnet_rate("anomalib_cflow", 1) or torch_rate("cflow_resnet18", 1),
            "anomalib CFlow" + (" (EfficientNet-Lite0)" if effnet_rate("anomalib_cflow", 1)
                                else " (ResNet-18)"), "img/s", 1, True),
    ]
    train_step = criterion_seconds(crit, "fastflow/train_step")
    train_batch = dig(pipeline, "fastflow_train_batch") or 8
    rows.append(Row("FastFlow training, cached features", per_second(train_step, train_batch),
                    two_threads(dig(effnet, "results", "anomalib_fastflow_train_step",
                                    "cached_features_bs8", "images_per_s")
                                or dig(detector, "results", "fastflow_resnet18_train_epoch",
                                       "images_per_s_epoch2")),
                    "torch FastFlow step on cached features", "img/s", 1, True))
    peak = dig(pipeline, "timing", "peak_memory_mib")
    rows.append(Row("sieve run, magnetic_tile, PatchCore, peak memory", peak, 2048.0,
                    "limit (2 GiB)", "MiB", 1))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--criterion", nargs="+", default=["target/criterion"],
                        help="criterion's output folders, searched in order")
    parser.add_argument("--peers", required=True, help="PEERS_ROOT/results of the peer scripts")
    parser.add_argument("--pipeline", help="report.json of a `sieve run` on magnetic_tile")
    parser.add_argument("--threads", type=int, default=2, choices=[1, 2],
                        help="threads of sieve's detector benchmarks; torch's figures at the "
                             "same count are compared (default 2)")
    args = parser.parse_args(argv)

    pipeline = json.loads(Path(args.pipeline).read_text()) if args.pipeline else None
    rows = build_rows(args.criterion, args.peers, pipeline, args.threads)
    header = ["what", "sieve", "peer", "peer tool", "ratio", "target", "verdict"]
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] * len(header)) + " |")
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
