"""Shared test helpers: small constructed shapes with known parts, and the path of ../shared/data."""

from __future__ import annotations

import base64
import json
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the ../shared data folder is not beside this checkout)")
    return path


def check_report(report: dict, meshes: bool) -> None:
    """An evaluate report is consistent: every category's mIoU and coverage are its shapes' means, a shape's mIoU
    the mean of its part IoUs (and, for `meshes`, its face mIoU the mean of its face part IoUs), its part shares
    at most the whole, and the summary the means over categories and over all shapes."""
    face_keys = {"face_miou", "face_part_iou"} if meshes else set()
    for r in report["results"]:
        assert 0 <= r["miou"] <= 1 and 0 <= r["coverage"] <= 1
        assert r["miou"] == pytest.approx(np.mean([s["miou"] for s in r["shapes"]]))
        assert r["coverage"] == pytest.approx(np.mean([s["coverage"] for s in r["shapes"]]))
        for s in r["shapes"]:
            assert set(s) == {"name", "miou", "coverage", "part_iou", "part_share", *face_keys}
            assert s["miou"] == pytest.approx(np.mean(list(s["part_iou"].values())))
            assert list(s["part_share"]) == list(s["part_iou"]) and sum(s["part_share"].values()) <= 1 + 1e-9
            if meshes:
                assert s["face_miou"] == pytest.approx(np.mean(list(s["face_part_iou"].values())))
    methods = list(dict.fromkeys(r["method"] for r in report["results"]))
    assert list(report["summary"]) == methods
    for m in methods:
        rows = [r for r in report["results"] if r["method"] == m]
        shapes = [s for r in rows for s in r["shapes"]]
        summary = report["summary"][m]
        assert summary["mean_over_categories"] == pytest.approx(np.mean([r["miou"] for r in rows]))
        assert summary["mean_over_shapes"] == pytest.approx(np.mean([s["miou"] for s in shapes]))
        assert summary["coverage"] == pytest.approx(np.mean([s["coverage"] for s in shapes]))
        if meshes:
            face_means = [np.mean([s["face_miou"] for s in r["shapes"]]) for r in rows]
            assert summary["face_mean_over_categories"] == pytest.approx(np.mean(face_means))


def two_box_mesh() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tall box (part 0) standing on a wide flat box (part 1): vertices, faces, per-face labels."""
    base = trimesh.creation.box(extents=(1.0, 0.2, 1.0))
    tower = trimesh.creation.box(extents=(0.3, 0.8, 0.3))
    tower.apply_translation((0, 0.5, 0))
    vertices = np.concatenate([tower.vertices, base.vertices])
    faces = np.concatenate([tower.faces, base.faces + len(tower.vertices)])
    labels = np.concatenate([np.zeros(len(tower.faces), int), np.ones(len(base.faces), int)])
    return vertices, faces, labels


def gltf_document(meshes: list[list[tuple[np.ndarray, np.ndarray]]], roots: list[dict]) -> tuple[dict, bytes]:
    """A minimal glTF document and its binary buffer: `meshes` is a list of meshes, each a list of (vertices,
    triangles) primitives; `roots` are the scene's root nodes in document order, each a glTF node dict
    ({"mesh": i, "translation": [...], "scale": [...], "children": [node dicts]}), flattened depth-first into
    `nodes`. The buffer carries no URI: `glb_bytes` embeds it, `gltf_text` inlines it as a data URI.

    Written by hand because the tests need node and primitive orders (and broken documents) that an exporter
    would never write.
    """
    blob, views, accessors = bytearray(), [], []

    def add(array: np.ndarray, target: int, component: int, kind: str) -> int:
        data = array.tobytes()
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data), "target": target})
        blob.extend(data + b"\0" * (-len(data) % 4))
        accessor = {"bufferView": len(views) - 1, "componentType": component, "count": len(array), "type": kind}
        if kind == "VEC3":
            accessor |= {"min": array.min(0).tolist(), "max": array.max(0).tolist()}
        accessors.append(accessor)
        return len(accessors) - 1

    gl_meshes = []
    for primitives in meshes:
        gl_meshes.append(
            {
                "primitives": [
                    {
                        "attributes": {"POSITION": add(np.asarray(v, np.float32), 34962, 5126, "VEC3")},
                        "indices": add(np.asarray(f, np.uint32).reshape(-1), 34963, 5125, "SCALAR"),
                    }
                    for v, f in primitives
                ]
            }
        )
    nodes: list[dict] = []

    def flatten(node: dict) -> int:
        index = len(nodes)
        nodes.append({k: v for k, v in node.items() if k != "children"})
        if node.get("children"):
            nodes[index]["children"] = [flatten(child) for child in node["children"]]
        return index

    scene = {"nodes": [flatten(root) for root in roots]}
    header = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [scene],
        "nodes": nodes,
        "meshes": gl_meshes,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    return header, bytes(blob)


def glb_bytes(header: dict, blob: bytes) -> bytes:
    """A binary glTF container (JSON chunk, then BIN chunk) of a document from `gltf_document`."""
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    total = 12 + 8 + len(text) + 8 + len(blob)
    out = struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(text), 0x4E4F534A) + text
    return out + struct.pack("<II", len(blob), 0x004E4942) + blob


def gltf_text(header: dict, blob: bytes) -> str:
    """A text glTF of a document from `gltf_document`, its buffer inlined as a base64 data URI."""
    buffer = {**header["buffers"][0], "uri": "data:application/octet-stream;base64," + base64.b64encode(blob).decode()}
    return json.dumps({**header, "buffers": [buffer]})


def write_glb(path: Path, meshes: list[list[tuple[np.ndarray, np.ndarray]]], roots: list[dict]) -> None:
    """Write a binary glTF of `meshes` and `roots` (see `gltf_document`)."""
    Path(path).write_bytes(glb_bytes(*gltf_document(meshes, roots)))


def closed_port_url() -> str:
    """An http URL of a localhost port nothing listens on: connections to it are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"
