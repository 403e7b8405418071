"""`partdistill export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

FORMAT_CHOICES = "glb|ply|obj|parts|json|npy|csv|png|html|torchscript|onnx"


def export(
    source: Annotated[
        Path,
        typer.Argument(
            help="A segment result (NAME.labels.json written by `partdistill segment`), a folder of them, "
            "or, for torchscript/onnx, a trained student.",
            show_default=False,
        ),
    ],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar=f"[{FORMAT_CHOICES}]",
            help="glb: one named, colored scene node per part. ply: colored mesh/cloud with int 'label' and "
            "float 'confidence' per face or point. obj: mesh + .mtl, one material per part. parts: one "
            "file per part (NAME.<part>.obj). json / npy / csv: labels and confidences for code. png: "
            "preview sheet. html: NAME.viewer.html, a self-contained 3D page for any browser (a folder of results "
            "also gets index.html, thumbnails linking to each page). torchscript / onnx: a student's network, for inference without partdistill.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write into (created if needed). Default: 'export' beside the result (or the "
            "student's .safetensors file); for a cached student, 'export' in the current folder.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace files that already exist in the output folder.")
    ] = False,
) -> None:
    """Export segment results to GLB/PLY/OBJ/per-part meshes/JSON/NPY/CSV/PNG/HTML, or a student to TorchScript/ONNX.

    Label arrays keep the mesh's face order or the cloud's point order; coordinates are the input's own.
    All files of one export are written together or not at all.
    """
    from partdistill_cli.console import console
    from partdistill_cli.export import STUDENT_FORMATS, check_format, export_results

    fmt = check_format(format)
    if fmt in STUDENT_FORMATS:
        from partdistill_cli.export import export_student

        written = export_student(source, fmt, out, overwrite)
    else:
        written = export_results(source, fmt, out, overwrite)
    for path in written:
        console.print(f"wrote {path}")
