"""Counts what each guard of the false-alarm filter contributes on a finished `sieve run`.

Reads report.json and recomputes, from the candidate table, how many test candidates would be
suppressed with each guard switched off in turn: candidates touching the ground truth (real
defects lost) and candidates on defect-free images (false alarms removed). Only counts are
recomputed; metrics that need the maps (AUROC, AUPRO) need a rerun with the matching --no-*
option.

    python3 scripts/guard_contributions.py OUT/report.json
"""

import json
import sys


def count(rows, cut, use_envelope, use_defect_envelope):
    gt = good = 0
    for row in rows:
        p = row["probability"]
        if p is None or p < cut:
            continue
        if use_envelope and not row["inside_envelope"]:
            continue
        if use_defect_envelope and row.get("like_defect", False):
            continue
        if row["touches_defect"]:
            gt += 1
        elif row["image"].startswith("good/"):
            good += 1
    return gt, good


def main():
    report = json.load(open(sys.argv[1]))
    rows = report["candidates"]
    gt_total = sum(1 for r in rows if r["touches_defect"])
    good_total = sum(1 for r in rows if r["image"].startswith("good/"))
    braked = report["filter"]["p_cut"]
    requested = report["filter"]["requested_p_cut"]
    variants = [
        ("all guards (as run)", braked, True, True),
        ("without the brake", requested, True, True),
        ("without the defect-range guard", braked, True, False),
        ("without the false-alarm envelope", braked, False, True),
        ("classifier alone at the requested cut", requested, False, False),
    ]
    print(f"{report['data']}: {gt_total} ground-truth candidates, {good_total} on defect-free images")
    print(f"{'variant':<40} {'cut':>7} {'gt suppressed':>14} {'false alarms removed':>21}")
    for name, cut, envelope, defect_envelope in variants:
        gt, good = count(rows, cut, envelope, defect_envelope)
        print(
            f"{name:<40} {cut:7.4f} {gt:>5} ({100 * gt / max(gt_total, 1):4.1f} %)"
            f" {good:>11} ({100 * good / max(good_total, 1):4.1f} %)"
        )


if __name__ == "__main__":
    main()
