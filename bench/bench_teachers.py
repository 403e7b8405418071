"""CPU time per view of each real teacher at its real model size, with random weights (no download needed).

Builds the architectures of the default checkpoints from their configurations (Grounding DINO tiny = Swin-T +
BERT-base at 800 px, SAM vit_b at 1024 px, OWLv2 B/16 at 960 px, CLIPSeg ViT-B/16 at 352 px), saves them to a
temporary folder, loads them through the teachers exactly as real weights are loaded, and times
`teacher.detect` on rendered views of a small mesh: the median of a few runs, divided by the number of views.

Random weights make random detections: thresholds are set to keep every box (then NMS); grounded-sam keeps the
best 2 per part (`max_boxes`), about what a trained detector keeps above its threshold, so SAM's work is
realistic. Random OWLv2 box heads saturate into zero-size boxes, so its last box layer is zeroed (boxes then
are the model's per-patch priors). The detection count is printed beside the time.

    python bench/bench_teachers.py [--threads 1] [--runs 3] [--views 1] [--parts 3] [--only clipseg ...]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def build_gdino(directory: Path) -> dict:
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessorPil,
        GroundingDinoProcessor,
    )

    from tiny_models import bert_tokenizer

    GroundingDinoForObjectDetection(GroundingDinoConfig()).eval().save_pretrained(directory)
    # The real BERT vocabulary cannot be fetched offline; the stand-in keeps BERT's special ids.
    GroundingDinoProcessor(GroundingDinoImageProcessorPil(), bert_tokenizer()).save_pretrained(directory)
    return {"detector": str(directory)}


def build_sam(path: Path) -> dict:
    from safetensors.torch import save_file
    from segment_anything import sam_model_registry

    sam = sam_model_registry["vit_b"]()
    save_file({k: v.contiguous() for k, v in sam.state_dict().items()}, str(path))
    return {"segmenter": str(path)}


def build_owlv2(directory: Path) -> dict:
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessorPil, Owlv2Processor

    from tiny_models import clip_tokenizer

    config = Owlv2Config(vision_config={"image_size": 960, "patch_size": 16})
    model = Owlv2ForObjectDetection(config).eval()
    model.box_head.dense2.weight.data.zero_()
    model.box_head.dense2.bias.data.zero_()
    model.save_pretrained(directory)
    Owlv2Processor(Owlv2ImageProcessorPil(size={"height": 960, "width": 960}), clip_tokenizer()).save_pretrained(
        directory
    )
    return {"detector": str(directory)}


def build_clipseg(directory: Path) -> dict:
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor, ViTImageProcessorPil

    from tiny_models import clip_tokenizer

    config = CLIPSegConfig(
        vision_config={"patch_size": 16}, reduce_dim=64, extract_layers=[3, 6, 9], decoder_intermediate_size=2048
    )
    CLIPSegForImageSegmentation(config).eval().save_pretrained(directory)
    image = ViTImageProcessorPil(
        size={"height": 352, "width": 352}, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    )
    CLIPSegProcessor(image, clip_tokenizer()).save_pretrained(directory)
    return {"clipseg": str(directory)}


SETUPS = {
    "clipseg": (lambda d: build_clipseg(d / "clipseg"), {"mask_threshold": 0.5}),
    "gdino-boxes": (lambda d: build_gdino(d / "gdino"), {"box_threshold": 0.0}),
    "grounded-sam": (
        lambda d: {**build_gdino(d / "gdino"), **build_sam(d / "sam_vit_b.safetensors")},
        {"box_threshold": 0.0, "max_boxes": 6},
    ),
    "owlv2-boxes": (lambda d: build_owlv2(d / "owlv2"), {"box_threshold": 0.0}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per teacher (median reported)")
    parser.add_argument("--views", type=int, default=1, help="views per run")
    parser.add_argument("--resolution", type=int, default=512, help="view size in pixels")
    parser.add_argument("--parts", type=int, default=3, help="number of part prompts")
    parser.add_argument("--only", nargs="*", choices=sorted(SETUPS), help="teachers to time (default: all)")
    args = parser.parse_args()

    import resource

    import torch
    import trimesh
    from rich.console import Console
    from rich.table import Table

    from partdistill_cli.cameras import view_set
    from partdistill_cli.render import render
    from partdistill_cli.shapes import from_mesh
    from partdistill_cli.teachers import make_teacher

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mesh = trimesh.creation.box(extents=(1.0, 0.6, 0.4))
    views = render(from_mesh(mesh.vertices, mesh.faces, 2000, 0, "box"), view_set(args.views, args.resolution))
    parts = ["leg", "seat", "back", "arm", "wheel", "handle"][: args.parts]
    console = Console(width=120)
    table = Table(
        title=f"teachers on CPU, random weights, {args.threads} thread(s), {args.views} view(s) of "
        f"{args.resolution}², {len(parts)} parts, median of {args.runs} runs"
    )
    for col in ("teacher", "s / view", "runs (s)", "detections / view", "load (s)", "peak RSS so far (GB)"):
        table.add_column(col)
    with tempfile.TemporaryDirectory(prefix="bench_teachers_") as tmp:
        for name in args.only or sorted(SETUPS):
            build, extra = SETUPS[name]
            t0 = time.perf_counter()
            opts = build(Path(tmp) / name)
            console.print(f"{name}: built and saved in {time.perf_counter() - t0:.1f} s")
            t0 = time.perf_counter()
            teacher = make_teacher(name, device="cpu", **opts, **extra)
            load = time.perf_counter() - t0
            times, count = [], 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                count = len(teacher.detect(views, parts, "chair"))
                times.append(time.perf_counter() - t0)
            per_view = statistics.median(times) / args.views
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
            console.print(f"{name}: {per_view:.2f} s per view")
            table.add_row(
                name,
                f"{per_view:.2f}",
                " ".join(f"{t:.2f}" for t in times),
                f"{count / args.views:.0f}",
                f"{load:.1f}",
                f"{rss:.1f}",
            )
            del teacher
            gc.collect()
    console.print(table)


if __name__ == "__main__":
    main()
