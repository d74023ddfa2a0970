#!/usr/bin/env python3
"""Time in torch, on the CPU, the network and detectors that sieve runs.

sieve's detectors run on EfficientNet-Lite0 features after blocks 2, 4 and 10 of its 16
MBConv blocks: strides 4, 8 and 16, with 24, 40 and 112 channels. In timm these are the
outputs of stages `blocks.1`, `blocks.2` and `blocks.4` of `efficientnet_lite0`. This script
times, at 256x256, batch 1 and 8, for each thread count:

  * backbone_blocks0-10: the stem and stages 0-4 of timm's efficientnet_lite0, in eval mode,
    returning the three feature maps. This is exactly the work of sieve's `features`.
  * backbone_blocks0-10_bn_folded: the same with every BatchNorm folded into its convolution,
    as sieve loads the network.
  * backbone_features_only: timm's `features_only` model with out_indices 1-3, as anomalib's
    feature extractors build it. It also runs stages 5 and 6, whose outputs are dropped.
  * anomalib_fastflow: anomalib's FastFlow (8 steps, alternating 3x3 and 1x1 subnets, hidden
    ratio 1.0) over the three feature maps. anomalib 2.7.0 accepts only ResNet-18,
    WideResNet-50-2, CaiT and DeiT backbones in `FastflowModel`, so the model is built for
    ResNet-18 and its feature extractor, layer norms and flow blocks are then replaced by the
    ones its constructor would build for efficientnet_lite0.
  * anomalib_cflow: anomalib's CFlow on the three feature maps (the same scales as sieve's
    CFlow), 8 coupling blocks, condition of 128, anomalib's default fiber batch of 64.
  * anomalib_patchcore: anomalib's PatchCore on `blocks.2` and `blocks.4` (152 values per patch,
    a 32x32 patch grid), 9 neighbours for the image score, with a seeded random memory bank of
    10,240 rows. `patchcore_search_batch1` times only its nearest-neighbour search of one
    image's 1,024 patches.

At the largest thread count it also times one FastFlow training step at batch 8 and 32, with
anomalib's FastflowLoss and Adam at lr 1e-3 and weight decay 1e-5 as anomalib configures it.
The step runs once as anomalib trains, with the backbone run on every batch, and once on
precomputed features, flows only, as sieve trains on cached features. `--coreset` adds anomalib's greedy coreset on 102,400
seeded rows of 384 values to 10,240 (several minutes).

Weights are random (pretrained=False) and inputs are seeded random images: run time does not
depend on the values. Run it in the venv that ../shared/peers/run_detector.sh builds:

    $PEERS_ROOT/venv-torch/bin/python scripts/peers/efficientnet_lite0_bench.py --json out.json
"""

import argparse
import copy
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

SIZE = 256
# timm stage indices whose outputs are sieve's three feature maps.
FEATURE_STAGES = (1, 2, 4)
FEATURE_LAYERS = [f"blocks.{stage}" for stage in FEATURE_STAGES]
PATCHCORE_LAYERS = ["blocks.2", "blocks.4"]
BANK_ROWS = 10_240


def timed(fn, arg, min_iters, min_seconds, warmup=2):
    """Call fn(arg) until both min_iters calls and min_seconds have passed. Return the
    median and minimum call time in seconds and the number of calls."""
    for _ in range(warmup):
        fn(arg)
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return statistics.median(times), min(times), len(times)


def throughput(fn, inputs, batch, args):
    median, fastest, iters = timed(fn, inputs[:batch].contiguous(), args.min_iters, args.min_seconds)
    return {
        "batch": batch,
        "iters": iters,
        "batch_ms_median": 1e3 * median,
        "batch_ms_min": 1e3 * fastest,
        "images_per_s": batch / median,
    }


class TruncatedLite0(nn.Module):
    """The stem and stages 0-4 of a timm EfficientNet, returning the outputs of stages 1, 2
    and 4."""

    def __init__(self, model):
        super().__init__()
        self.conv_stem = model.conv_stem
        self.bn1 = model.bn1
        self.blocks = model.blocks[: max(FEATURE_STAGES) + 1]

    def forward(self, x):
        x = self.bn1(self.conv_stem(x))
        features = []
        for index, stage in enumerate(self.blocks):
            x = stage(x)
            if index in FEATURE_STAGES:
                features.append(x)
        return features


def fold_batch_norms(module):
    """Fold each BatchNormAct2d of a timm EfficientNet into the convolution before it, in
    place, leaving only its activation."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for sub in module.modules():
        names = {name for name, _ in sub.named_children()}
        # (convolution, norm) attribute pairs of inverted-residual blocks, depthwise-separable
        # blocks and the stem.
        if "conv_pwl" in names:
            pairs = [("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3")]
        elif "conv_dw" in names:
            pairs = [("conv_dw", "bn1"), ("conv_pw", "bn2")]
        elif "conv_stem" in names:
            pairs = [("conv_stem", "bn1")]
        else:
            continue
        for conv_name, bn_name in pairs:
            conv, bn = getattr(sub, conv_name), getattr(sub, bn_name)
            setattr(sub, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(sub, bn_name, nn.Sequential(bn.drop, bn.act))
    return module


def lite0_features_only(timm):
    return timm.create_model("efficientnet_lite0", pretrained=False, features_only=True,
                             out_indices=list(range(1, len(FEATURE_STAGES) + 1)))


def fastflow_on_lite0(timm):
    """anomalib's FastflowModel with its ResNet-18 parts replaced by those its constructor
    builds for a CNN backbone, here efficientnet_lite0."""
    from anomalib.models.image.fastflow.torch_model import FastflowModel, create_fast_flow_block

    model = FastflowModel(input_size=(SIZE, SIZE), backbone="resnet18", pre_trained=False,
                          flow_steps=8, conv3x3_only=False, hidden_ratio=1.0)
    extractor = lite0_features_only(timm)
    for parameter in extractor.parameters():
        parameter.requires_grad = False
    channels = extractor.feature_info.channels()
    sides = [SIZE // reduction for reduction in extractor.feature_info.reduction()]
    model.feature_extractor = extractor
    model.norms = nn.ModuleList(
        nn.LayerNorm([c, side, side], elementwise_affine=True) for c, side in zip(channels, sides))
    model.fast_flow_blocks = nn.ModuleList(
        create_fast_flow_block(input_dimensions=[c, side, side], conv3x3_only=False,
                               hidden_ratio=1.0, flow_steps=8)
        for c, side in zip(channels, sides))
    return model


def bench_inference(name, model, inputs, threads, args, results):
    model.eval()
    out = results.setdefault(name, {})
    with torch.inference_mode():
        for count in threads:
            torch.set_num_threads(count)
            out[f"threads{count}"] = {f"bs{b}": throughput(model, inputs, b, args) for b in (1, 8)}
            print(name, count, "threads", json.dumps(out[f"threads{count}"]), flush=True)


def bench_train_step(model, inputs, threads, args, results):
    """Time one Adam step of FastFlow as anomalib trains it, and on precomputed features."""
    from anomalib.models.image.fastflow.loss import FastflowLoss

    torch.set_num_threads(max(threads))
    model.train()
    loss_fn = FastflowLoss()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)

    def step_images(x):
        hidden, jacobians = model(x)
        optimiser.zero_grad()
        loss_fn(hidden, jacobians).backward()
        optimiser.step()

    def step_features(features):
        hidden, jacobians = [], []
        for block, norm, feature in zip(model.fast_flow_blocks, model.norms, features):
            z, log_jacobian = block(norm(feature))
            hidden.append(z)
            jacobians.append(log_jacobian)
        optimiser.zero_grad()
        loss_fn(hidden, jacobians).backward()
        optimiser.step()

    out = results.setdefault("anomalib_fastflow_train_step", {"threads": max(threads)})
    for batch in (8, 32):
        x = inputs[:batch].contiguous()
        with torch.no_grad():
            features = [f.clone() for f in model.feature_extractor(x)]
        for label, fn, arg in (("with_backbone", step_images, x), ("cached_features", step_features, features)):
            median, fastest, iters = timed(fn, arg, args.train_iters, 0.0, warmup=1)
            out[f"{label}_bs{batch}"] = {"batch": batch, "iters": iters, "step_s_median": median,
                                         "step_s_min": fastest, "images_per_s": batch / median}
            print("fastflow train", label, batch, json.dumps(out[f"{label}_bs{batch}"]), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--min-iters", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--train-iters", type=int, default=3, help="timed steps per training case")
    parser.add_argument("--only", nargs="*",
                        default=["backbone", "fastflow", "cflow", "patchcore", "train"])
    parser.add_argument("--coreset", action="store_true", help="also time the greedy coreset")
    parser.add_argument("--json", help="file to write the results to")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    import anomalib
    import timm

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(32, 3, SIZE, SIZE, generator=generator)
    report = {
        "env": {"python": platform.python_version(), "torch": torch.__version__,
                "anomalib": anomalib.__version__, "timm": timm.__version__,
                "interop_threads": torch.get_num_interop_threads(), "input": f"{SIZE}x{SIZE}x3 f32"},
        "results": {},
    }
    results = report["results"]
    threads = args.threads

    if "backbone" in args.only:
        full = timm.create_model("efficientnet_lite0", pretrained=False).eval()
        truncated = TruncatedLite0(full).eval()
        shapes = [list(f.shape) for f in truncated(inputs[:1])]
        assert shapes == [[1, 24, 64, 64], [1, 40, 32, 32], [1, 112, 16, 16]], shapes
        bench_inference("backbone_blocks0-10", truncated, inputs, threads, args, results)
        folded = fold_batch_norms(copy.deepcopy(truncated))
        with torch.inference_mode():
            for a, b in zip(truncated(inputs[:1]), folded(inputs[:1])):
                assert torch.allclose(a, b, rtol=1e-3, atol=1e-3), "BatchNorm folding changed the output"
        bench_inference("backbone_blocks0-10_bn_folded", folded, inputs, threads, args, results)
        bench_inference("backbone_features_only", lite0_features_only(timm), inputs, threads, args, results)

    if "fastflow" in args.only:
        bench_inference("anomalib_fastflow", fastflow_on_lite0(timm), inputs, threads, args, results)

    if "cflow" in args.only:
        from anomalib.models.image.cflow.torch_model import CflowModel

        cflow = CflowModel(backbone="efficientnet_lite0", layers=FEATURE_LAYERS, pre_trained=False,
                           fiber_batch_size=64, condition_vector=128, coupling_blocks=8,
                           clamp_alpha=1.9)
        bench_inference("anomalib_cflow", cflow, inputs, threads, args, results)

    if "patchcore" in args.only:
        from anomalib.models.image.patchcore.torch_model import PatchcoreModel

        patchcore = PatchcoreModel(backbone="efficientnet_lite0", layers=PATCHCORE_LAYERS,
                                   pre_trained=False, num_neighbors=9)
        with torch.inference_mode():
            patchcore.train()
            embedding = patchcore(inputs[:1])  # (1024, 152)
        patchcore.memory_bank = torch.randn(BANK_ROWS, embedding.shape[1], generator=generator)
        bench_inference("anomalib_patchcore", patchcore, inputs, threads, args, results)
        search = results.setdefault("patchcore_search_batch1", {"bank": list(patchcore.memory_bank.shape),
                                                                "queries": list(embedding.shape)})
        with torch.inference_mode():
            for count in threads:
                torch.set_num_threads(count)
                median, fastest, iters = timed(lambda e: patchcore.nearest_neighbors(e, n_neighbors=1),
                                               embedding, args.min_iters, args.min_seconds)
                search[f"threads{count}"] = {"iters": iters, "ms_median": 1e3 * median,
                                             "ms_min": 1e3 * fastest}
        print("patchcore search", json.dumps(search), flush=True)

    if "train" in args.only:
        torch.manual_seed(0)
        bench_train_step(fastflow_on_lite0(timm), inputs, threads, args, results)

    if args.coreset:
        from anomalib.models.components.sampling import KCenterGreedy

        torch.set_num_threads(max(threads))
        rows = torch.randn(102_400, 384, generator=generator)
        start = time.perf_counter()
        KCenterGreedy(embedding=rows, sampling_ratio=0.1).sample_coreset()
        results["anomalib_coreset_102400_to_10240"] = {"dim": 384, "threads": max(threads),
                                                       "seconds": time.perf_counter() - start}
        print("coreset", json.dumps(results["anomalib_coreset_102400_to_10240"]), flush=True)

    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    print(json.dumps(report["env"], indent=1))


if __name__ == "__main__":
    sys.exit(main())
