"""`partdistill doctor`: what works here, what is missing, and how to fix it."""

from __future__ import annotations

import importlib
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer


@dataclass
class Check:
    """One line of the report. status: "ok", "missing" (optional, with a fix) or "fail" (the core is broken)."""

    name: str
    status: str
    detail: str
    fix: str = ""


def _version(module: str, package: str | None = None) -> str:
    """Import `module` (raising what its import raises) and return its distribution's version."""
    from importlib import metadata

    mod = importlib.import_module(module)
    try:
        return metadata.version(package or module)
    except metadata.PackageNotFoundError:
        return str(getattr(mod, "__version__", "installed"))


def _has_dist(name: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def check_core() -> list[Check]:
    """numpy, scipy, trimesh and torch: without them nothing runs."""
    out = []
    for module in ("numpy", "scipy", "trimesh", "torch"):
        try:
            out.append(Check(module, "ok", _version(module)))
        except Exception as exc:
            out.append(Check(module, "fail", _first_line(exc), f"pip install {module}"))
    return out


def check_cuda() -> Check:
    try:
        import torch
    except Exception as exc:
        return Check("CUDA", "missing", _first_line(exc), "pip install torch")
    if torch.cuda.is_available():
        return Check("CUDA", "ok", f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}")
    return Check(
        "CUDA",
        "missing",
        f"torch {torch.__version__} sees no GPU; everything runs on the CPU (slower teachers)",
        "on a machine with an NVIDIA GPU, install a CUDA build of torch",
    )


def check_open3d() -> Check:
    try:
        return Check("open3d", "ok", _version("open3d", "open3d-cpu" if _has_dist("open3d-cpu") else "open3d"))
    except OSError as exc:
        from partdistill_cli.deps import LIBUSB_INSTALL

        fix = "pip install open3d-cpu (or open3d)"
        if "libusb" in str(exc):
            fix = f"install the system library libusb: {LIBUSB_INSTALL}"
        return Check("open3d", "fail", _first_line(exc), fix)
    except Exception as exc:
        return Check("open3d", "fail", _first_line(exc), "pip install open3d-cpu (or open3d)")


def check_cpu_renderer() -> Check:
    """Ray-cast a cube at 32 px: proves open3d's ray caster and our renderer run here."""
    try:
        import numpy as np
        import trimesh

        from partdistill_cli.cameras import view_set
        from partdistill_cli.render import render
        from partdistill_cli.shapes import from_mesh

        cube = trimesh.creation.box()
        views = render(from_mesh(cube.vertices, cube.faces, 200, 0, "cube"), view_set(2, 32), "raycast")
        seen = float(np.mean(views.ids >= 0))
        if seen <= 0:
            return Check("CPU renderer", "fail", "rendered an empty image", "report this as a bug")
        return Check("CPU renderer", "ok", f"ray-cast a cube ({seen:.0%} of pixels hit)")
    except Exception as exc:
        return Check("CPU renderer", "fail", _first_line(exc), "see the open3d line above")


def check_nvdiffrast() -> Check:
    import importlib.util

    if importlib.util.find_spec("nvdiffrast") is None:
        return Check(
            "nvdiffrast",
            "missing",
            "GPU mesh renderer not installed (the CPU ray caster is used)",
            "on a CUDA machine: pip install 'partdistill[gpu]' (diffrp-nvdiffrast; compiles on first use)",
        )
    from partdistill_cli.render.nvdiffrast import available

    if not available():
        return Check("nvdiffrast", "missing", "installed, but no CUDA GPU", "needs an NVIDIA GPU with CUDA")
    return Check("nvdiffrast", "ok", "installed, CUDA present")


def check_vlm_packages() -> list[Check]:
    """The packages the vision-language teachers import (from their specs), each once."""
    from partdistill_cli.teachers.specs import TEACHER_SPECS

    packages = dict.fromkeys(p for spec in TEACHER_SPECS.values() for p in spec.packages)
    out = []
    for module, package in packages:
        try:
            out.append(Check(package, "ok", _version(module, package)))
        except Exception as exc:
            out.append(Check(package, "missing", _first_line(exc), "pip install 'partdistill[vlm]'"))
    return out


def check_weights() -> list[Check]:
    """The weights every real teacher loads (from the teacher specs): in the cache, at the local path given, or not."""
    from partdistill_cli.teachers.specs import WEIGHT_SOURCES, used_by

    out = []
    for key, source in WEIGHT_SOURCES.items():
        users = ", ".join(used_by(key))
        if users:
            out.append(_check_sam(users) if source.kind == "sam" else _check_hub(key, users))
    return out


def _check_hub(key: str, users: str) -> Check:
    from partdistill_cli.weights import HUB_MODELS, hub_cached, offline, resolve_hub

    spec = HUB_MODELS[key]
    source = resolve_hub(key, None)
    try:
        cached = hub_cached(source)
    except Exception as exc:
        return Check(f"{spec.what} weights", "missing", _first_line(exc), "pip install 'partdistill[vlm]'")
    where = "local directory" if Path(source).is_absolute() else "Hugging Face cache"
    if cached:
        return Check(f"{spec.what} weights", "ok", f"{source} ({where}); used by {users}")
    if Path(source).is_absolute():
        fix = f"{spec.env} points at a directory without a saved model; fix or unset it"
        return Check(f"{spec.what} weights", "missing", f"{source}: not a saved model", fix)
    when = "" if offline() else " (or let the first run download it)"
    return Check(
        f"{spec.what} weights",
        "missing",
        f"{source} not in the {where}; used by {users}",
        f"hf download {source}{when}, or set {spec.env}=DIR",
    )


def _check_sam(users: str) -> Check:
    from partdistill_cli.weights import SAM_CHECKPOINTS, SAM_ENV, offline, resolve_sam, sam_cache_path, sam_present

    sam = resolve_sam(None)
    if sam_present(sam):
        where = sam_cache_path(sam) if sam in SAM_CHECKPOINTS else sam
        return Check("SAM checkpoint", "ok", f"{sam}: {where}; used by {users}")
    if sam in SAM_CHECKPOINTS:
        when = "" if offline() else " (or let the first run download it)"
        return Check(
            "SAM checkpoint",
            "missing",
            f"{sam} not in {sam_cache_path(sam).parent}; used by {users}",
            f"curl -L -o {sam_cache_path(sam)} {SAM_CHECKPOINTS[sam].url}{when}, or set {SAM_ENV}=FILE",
        )
    return Check("SAM checkpoint", "missing", f"{sam}: no such file", f"fix or unset {SAM_ENV}")


def _size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def check_caches() -> list[Check]:
    from partdistill_cli.store import CACHE_ENV, cache_root
    from partdistill_cli.weights import offline

    root = cache_root()
    out = [Check("partdistill cache", "ok", f"{root} ({_human(_size(root))}); set {CACHE_ENV} to move it")]
    try:
        from huggingface_hub import constants

        hub = Path(constants.HF_HUB_CACHE)
        out.append(Check("Hugging Face cache", "ok", f"{hub} ({_human(_size(hub))}); HF_HOME moves it"))
    except Exception as exc:
        out.append(Check("Hugging Face cache", "missing", _first_line(exc), "pip install 'partdistill[vlm]'"))
    if offline():
        out.append(Check("network", "ok", "HF_HUB_OFFLINE is set: weights are only read from the caches"))
    return out


CHECKS: list[Callable[[], Check | list[Check]]] = [
    check_core,
    check_cuda,
    check_open3d,
    check_cpu_renderer,
    check_nvdiffrast,
    check_vlm_packages,
    check_weights,
    check_caches,
]


def run_checks() -> list[Check]:
    out: list[Check] = []
    for check in CHECKS:
        result = check()
        out.extend(result if isinstance(result, list) else [result])
    return out


def doctor() -> None:
    """Check this installation: torch and CUDA, open3d, the renderers, the vision-language packages, each
    teacher's model weights and the caches. Each line says ok or missing, with the fix.

    Exits 0 when the core (numpy, scipy, trimesh, torch, open3d, the CPU renderer) works, 1 otherwise.
    """
    from rich.markup import escape
    from rich.table import Table

    from partdistill_cli import __version__
    from partdistill_cli.console import console

    checks = run_checks()
    table = Table(title=f"partdistill {__version__} · Python {platform.python_version()} · {os.cpu_count()} CPUs")
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")
    colour = {"ok": "green", "missing": "yellow", "fail": "bold red"}
    for c in checks:
        table.add_row(c.name, f"[{colour[c.status]}]{c.status}[/]", escape(c.detail), escape(c.fix))
    console.print(table)
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        console.print(f"[bold red]the core does not work here:[/] {', '.join(failed)} (see the fixes above)")
        raise typer.Exit(1)
    console.print("[green]the core works[/]; lines marked missing are optional features.")
