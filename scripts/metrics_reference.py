#!/usr/bin/env python3
"""Print the reference values that the tests of `sieve_core::metrics` compare against.

ROC, AUROC and F1 values come from scikit-learn. AUPRO comes from a NumPy/SciPy port of
the per-region overlap evaluation published with the MVTec AD dataset (Bergmann et al.,
"The MVTec Anomaly Detection Dataset", IJCV 2021). The port labels 8-connected
ground-truth regions and builds the exact curve over all distinct scores. It integrates
with the trapezoid rule up to the FPR limit, interpolating linearly at the limit, and
divides by the limit.

The fixtures come from a 32-bit linear congruential generator written out the same way in
the Rust tests, so both languages see identical scores, labels and masks.

Run it from the repository root:

    python3 -m venv /tmp/metrics-venv
    /tmp/metrics-venv/bin/python -m pip install numpy scikit-learn scipy
    /tmp/metrics-venv/bin/python scripts/metrics_reference.py

Last run with numpy 2.4.6, scikit-learn 1.9.1 and scipy 1.17.1.
"""

from bisect import bisect_right
from fractions import Fraction

import numpy as np
from scipy.ndimage import label
from sklearn.metrics import f1_score, precision_recall_curve, roc_auc_score, roc_curve


def lcg(state):
    """Advance the Numerical Recipes LCG: state * 1664525 + 1013904223 modulo 2^32."""
    return (1664525 * state + 1013904223) % 2**32


def scored_fixture(count, levels, seed):
    """Return (scores, labels) with `levels` distinct scores; higher levels are more often positive."""
    state = seed
    scores = []
    labels = []
    for _ in range(count):
        state = lcg(state)
        level = (state >> 16) % levels
        state = lcg(state)
        draw = (state >> 16) % 1024
        labels.append(draw < 256 + (512 * level) // levels)
        scores.append((level - levels // 2) / 16)
    return np.array(scores, dtype=np.float32), np.array(labels, dtype=bool)


# Defect rectangles per image as (x0, y0, x1, y1), end exclusive. Image 0 has a 4x3 block, a
# diagonal chain of three pixels (one 8-connected region) and a single pixel. Image 1 is
# defect-free. Image 2 has a band, a diagonal pair and a corner pixel.
PRO_WIDTH = 12
PRO_HEIGHT = 9
PRO_RECTANGLES = [
    [(2, 1, 6, 4), (7, 5, 8, 6), (8, 6, 9, 7), (9, 7, 10, 8), (10, 1, 11, 2)],
    [],
    [(0, 6, 12, 9), (5, 2, 6, 3), (6, 3, 7, 4), (0, 0, 1, 1)],
]


def pro_fixture(seed):
    """Return (maps, masks) of shape (images, height, width); defect pixels score 10 levels higher."""
    masks = np.zeros((len(PRO_RECTANGLES), PRO_HEIGHT, PRO_WIDTH), dtype=bool)
    for image, rectangles in enumerate(PRO_RECTANGLES):
        for x0, y0, x1, y1 in rectangles:
            masks[image, y0:y1, x0:x1] = True
    maps = np.zeros(masks.shape, dtype=np.float32)
    state = seed
    for image in range(masks.shape[0]):
        for y in range(PRO_HEIGHT):
            for x in range(PRO_WIDTH):
                state = lcg(state)
                level = (state >> 16) % 32
                if masks[image, y, x]:
                    level += 10
                maps[image, y, x] = level / 8
    return maps, masks


def pro_curve(maps, masks, fpr_float32=False):
    """Return (fpr, pro) over all distinct scores, starting at (0, 0), as the MVTec evaluation does.

    `maps` and `masks` are sequences of 2-D arrays; each map has the shape of its mask, but
    images may differ in size. The MVTec code stores FPR as float32 to save memory;
    `fpr_float32=True` does the same, and the default keeps float64 as the Rust code does.
    """
    regions = 0
    normal_pixels = 0
    fp_steps = []
    pro_steps = []
    for mask in masks:
        labelled, count = label(mask, structure=np.ones((3, 3), dtype=int))
        regions += count
        normal = labelled == 0
        normal_pixels += normal.sum()
        pro_step = np.zeros(mask.shape, dtype=np.float64)
        for region in range(1, count + 1):
            inside = labelled == region
            pro_step[inside] = 1.0 / inside.sum()
        fp_steps.append(normal.astype(np.float64).ravel())
        pro_steps.append(pro_step.ravel())

    scores = np.concatenate([np.asarray(m, dtype=np.float32).ravel() for m in maps])
    order = np.argsort(scores, kind="stable")[::-1]
    sorted_scores = scores[order]
    false_positives = np.cumsum(np.concatenate(fp_steps)[order])
    if fpr_float32:
        fpr = false_positives.astype(np.float32) / np.float32(normal_pixels)
    else:
        fpr = false_positives / normal_pixels
    pro = np.cumsum(np.concatenate(pro_steps)[order]) / regions
    last_of_run = np.append(np.diff(sorted_scores) != 0, True)
    fpr = np.minimum(fpr[last_of_run], 1.0)
    pro = np.minimum(pro[last_of_run], 1.0)
    return np.concatenate(([0.0], fpr, [1.0])), np.concatenate(([0.0], pro, [1.0]))


def trapezoid_to_limit(x, y, limit):
    """Integrate y over x from x[0] to `limit`, interpolating linearly where the limit falls."""
    correction = 0.0
    if limit not in x:
        after = bisect_right(x, limit)
        y_limit = y[after - 1] + (y[after] - y[after - 1]) * (limit - x[after - 1]) / (
            x[after] - x[after - 1]
        )
        correction = 0.5 * (y_limit + y[after - 1]) * (limit - x[after - 1])
    inside = x <= limit
    x = x[inside]
    y = y[inside]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction)


def aupro(maps, masks, limit, fpr_float32=False):
    fpr, pro = pro_curve(maps, masks, fpr_float32)
    return trapezoid_to_limit(fpr.astype(np.float64), pro, limit) / limit


def f1_max(scores, labels):
    """Return (f1, threshold): the best F1 over distinct thresholds, the lowest threshold on ties."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    positives = int(labels.sum())
    best = None
    for threshold in thresholds:
        predicted = scores >= threshold
        true_positives = int((predicted & labels).sum())
        exact = Fraction(2 * true_positives, int(predicted.sum()) + positives)
        if best is None or exact >= best[0]:
            best = (exact, float(threshold))
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    assert abs(float(f1.max()) - float(best[0])) < 1e-12
    return float(best[0]), best[1]


def print_scored(name, scores, labels, threshold):
    print(f"== {name}: {len(scores)} scores, {int(labels.sum())} positive")
    print("auroc", repr(float(roc_auc_score(labels, scores))))
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    print("roc points", len(fpr))
    indices = range(len(fpr)) if len(fpr) <= 12 else [0, 1, 2, len(fpr) // 2, len(fpr) - 1]
    for index in indices:
        print(
            f"roc[{index}] fpr {float(fpr[index])!r} tpr {float(tpr[index])!r}",
            f"threshold {float(thresholds[index])!r}",
        )
    # Compare in float64, as the Rust code does; NumPy would otherwise round the threshold to
    # float32 before comparing.
    predicted = scores.astype(np.float64) >= threshold
    print(
        f"f1_at({threshold!r}) f1",
        repr(float(f1_score(labels, predicted, zero_division=0))),
        "precision",
        repr(float((predicted & labels).sum() / max(predicted.sum(), 1))),
        "recall",
        repr(float((predicted & labels).sum() / labels.sum())),
    )
    f1, best_threshold = f1_max(scores, labels)
    predicted = scores >= best_threshold
    print("f1_max", repr(f1), "threshold", repr(best_threshold))
    print("f1_score at f1_max threshold", repr(float(f1_score(labels, predicted, zero_division=0))))


def main():
    print_scored(
        "textbook",
        np.array([0.1, 0.4, 0.35, 0.8], dtype=np.float32),
        np.array([False, False, True, True]),
        float(np.float32(0.35)),
    )
    scores, labels = scored_fixture(40, 8, 7)
    print_scored("ties (40 scores, 8 levels, seed 7)", scores, labels, 0.0)
    scores, labels = scored_fixture(3000, 4096, 2024)
    print_scored("large (3000 scores, 4096 levels, seed 2024)", scores, labels, 40.0)

    maps, masks = pro_fixture(99)
    fpr, pro = pro_curve(maps, masks)
    print(f"== pro fixture (seed 99): {len(fpr)} curve points including (0, 0) and (1, 1)")
    for index in [1, 2, 10, len(fpr) - 2]:
        print(f"pro[{index}] fpr {float(fpr[index])!r} pro {float(pro[index])!r}")
    for limit in [0.05, 0.3, 1.0]:
        print(f"aupro({limit})", repr(aupro(maps, masks, limit)))
        print(f"aupro({limit}) with float32 FPR", repr(aupro(maps, masks, limit, True)))

    # The hand-derived case of the Rust tests: a 5x1 image with two regions and a defect-free
    # 2x1 image.
    maps = [np.array([[0.9, 0.1, 0.6, 0.8, 0.3]]), np.array([[0.7, 0.3]])]
    masks = [np.array([[1, 0, 0, 1, 1]], dtype=bool), np.array([[0, 0]], dtype=bool)]
    fpr, pro = pro_curve(maps, masks)
    print("== hand case")
    print("fpr", fpr.tolist())
    print("pro", pro.tolist())
    for limit in [0.25, 0.6, 1.0]:
        print(f"aupro({limit})", repr(aupro(maps, masks, limit)))

if __name__ == "__main__":
    main()
