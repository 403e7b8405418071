"""The vision-language teachers, run on tiny randomly initialised models of the real architectures.

The weights are random, so these tests check structure and plumbing (detections of the right types, sizes and
ranges; names that identify settings; weights found by option and environment; clear errors when weights are
missing), not detection quality.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from partdistill_cli import weights
from partdistill_cli.cameras import view_set
from partdistill_cli.knowledge import Detection
from partdistill_cli.lift import lift
from partdistill_cli.render import render
from partdistill_cli.shapes import from_mesh
from partdistill_cli.teachers import TEACHERS, TeacherError, make_teacher
from partdistill_cli.teachers.prompts import check_template, part_prompts, part_span, readable

from helpers import closed_port_url, two_box_mesh
from tiny_models import TINY_THRESHOLDS, build_tiny_sam, weight_env

PARTS = ["tower", "base"]
REAL = ["grounded-sam", "gdino-boxes", "owlv2-boxes", "clipseg"]


@pytest.fixture(scope="session")
def views():
    v, f, _ = two_box_mesh()
    shape = from_mesh(v, f, 800, seed=0, name="two_boxes")
    return shape, render(shape, view_set(3, 64))


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """No weights anywhere: empty caches, HF offline, no PARTDISTILL_* overrides."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads its cache location at import; both it and transformers look it up here per call.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    for env in ["PARTDISTILL_GDINO", "PARTDISTILL_SAM", "PARTDISTILL_OWLV2", "PARTDISTILL_CLIPSEG"]:
        monkeypatch.delenv(env, raising=False)


@pytest.mark.parametrize("name", REAL)
def test_teacher_detections_have_the_documented_structure(name, tiny, views):
    shape, vw = views
    teacher = make_teacher(name, device="cpu", **tiny[name], **TINY_THRESHOLDS[name])
    dets = teacher.detect(vw, PARTS, "toy")
    h, w = vw.size
    assert dets, "random weights with zero thresholds should still detect something"
    assert teacher.kind in ("mask", "box")
    for d in dets:
        assert isinstance(d, Detection)
        assert 0 <= d.view < vw.n_views and 0 <= d.part < len(PARTS)
        assert 0.0 <= d.score <= 1.0
        if teacher.kind == "mask":
            assert d.box is None and d.mask.shape == (h, w) and d.mask.dtype == bool and d.mask.any()
        else:
            x0, y0, x1, y1 = d.box
            assert d.mask is None and d.box.shape == (4,)
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    knowledge = lift(dets, vw, PARTS)
    knowledge.validate()
    assert knowledge.n_points == shape.n_points


def test_clipseg_masks_are_exclusive_and_on_the_shape(tiny, views):
    _, vw = views
    teacher = make_teacher("clipseg", device="cpu", **tiny["clipseg"], **TINY_THRESHOLDS["clipseg"])
    dets = teacher.detect(vw, PARTS, None)
    for v in range(vw.n_views):
        stack = np.array([d.mask for d in dets if d.view == v])
        assert stack.sum(axis=0).max() <= 1
        assert not (stack.any(axis=0) & (vw.ids[v] < 0)).any()
    for d in dets:
        probs = teacher.probabilities(vw.rgb[d.view : d.view + 1], part_prompts(PARTS, None, teacher.template))
        assert d.score == pytest.approx(float(probs[0, d.part][d.mask].mean()), abs=1e-5)
        break


def test_names_identify_model_and_settings(tiny):
    a = make_teacher("gdino-boxes", device="cpu", **tiny["gdino-boxes"], box_threshold=0.2)
    b = make_teacher("gdino-boxes", device="cpu", **tiny["gdino-boxes"], box_threshold=0.3)
    c = make_teacher("gdino-boxes", device="cpu", **tiny["gdino-boxes"], box_threshold=0.3, template="{part}")
    assert len({a.name, b.name, c.name}) == 3
    assert tiny["gdino-boxes"]["detector"] in a.name and a.name.startswith("gdino-boxes(")
    g = make_teacher("grounded-sam", device="cpu", **tiny["grounded-sam"])
    assert tiny["grounded-sam"]["segmenter"] in g.name and g.name.startswith("grounded-sam(")


def test_weights_come_from_environment_variables(tiny, monkeypatch, views):
    for key, value in weight_env("grounded-sam", tiny["grounded-sam"]).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PARTDISTILL_CLIPSEG", tiny["clipseg"]["clipseg"])
    teacher = make_teacher("grounded-sam", device="cpu", box_threshold=0.0)
    assert tiny["grounded-sam"]["detector"] in teacher.name
    assert tiny["grounded-sam"]["segmenter"] in teacher.name
    assert tiny["clipseg"]["clipseg"] in make_teacher("clipseg", device="cpu").name
    # An explicit option wins over the environment.
    with pytest.raises(TeacherError, match="no such directory"):
        make_teacher("clipseg", device="cpu", clipseg="/nonexistent/clipseg")


def test_grounding_dino_token_map_covers_only_each_parts_own_words(tiny):
    teacher = make_teacher("gdino-boxes", device="cpu", **tiny["gdino-boxes"])
    gd = teacher.detector
    parts = ["leg", "seat", "back"]
    [(caption, owner, group)] = gd.captions(parts, "chair")
    assert caption == "the leg of a chair. the seat of a chair. the back of a chair."
    assert group == [0, 1, 2]
    tokens = gd.processor.tokenizer.convert_ids_to_tokens(gd.processor.tokenizer(caption)["input_ids"])
    assert [t for t, o in zip(tokens, owner, strict=True) if o >= 0] == ["leg", "seat", "back"]
    assert list(owner[owner >= 0]) == [0, 1, 2]
    # Too many parts for one caption (the tiny model reads 64 tokens): split, every part in exactly one.
    many = [f"part{chr(97 + i)}" for i in range(12)]
    chunks = gd.captions(many, "chair")
    assert len(chunks) > 1
    assert sorted(j for _, _, g in chunks for j in g) == list(range(12))
    for cap, own, _ in chunks:
        assert len(own) <= gd.max_tokens and cap.endswith(".")


def test_prompt_templates():
    assert readable("foot_pad") == "foot pad" and readable("StorageFurniture") == "storage furniture"
    assert part_prompts(["leg", "foot_pad"], "Chair") == ["the leg of a chair", "the foot pad of a chair"]
    assert part_prompts(["leg"], None) == ["leg"]
    assert part_prompts(["leg"], "chair", "a photo of a {part}") == ["a photo of a leg"]
    prompts = part_prompts(["leg", "foot_pad"], "chair")
    lo, hi = part_span(["leg", "foot_pad"], "chair", "the {part} of a {category}", 1)
    assert prompts[1][lo:hi] == "foot pad"
    for bad in ["{category} only", "{part} {colour}", "{part"]:
        with pytest.raises(ValueError, match="template"):
            check_template(bad)


def test_missing_local_weights_say_what_and_how(no_network):
    with pytest.raises(TeacherError) as err:
        make_teacher("gdino-boxes", device="cpu", detector="/nonexistent/gdino")
    msg = str(err.value)
    assert "Grounding DINO" in msg and "/nonexistent/gdino" in msg and "PARTDISTILL_GDINO" in msg


@pytest.mark.parametrize(
    ("name", "model_id", "env"),
    [
        ("gdino-boxes", "IDEA-Research/grounding-dino-tiny", "PARTDISTILL_GDINO"),
        ("owlv2-boxes", "google/owlv2-base-patch16-ensemble", "PARTDISTILL_OWLV2"),
        ("clipseg", "CIDAS/clipseg-rd64-refined", "PARTDISTILL_CLIPSEG"),
    ],
)
def test_missing_hub_weights_offline_give_the_download_command(name, model_id, env, no_network):
    with pytest.raises(TeacherError) as err:
        make_teacher(name, device="cpu")
    msg = str(err.value)
    assert f"hf download {model_id}" in msg and env in msg


def test_missing_sam_checkpoint_offline(no_network, tiny):
    with pytest.raises(TeacherError) as err:
        make_teacher("grounded-sam", device="cpu", detector=tiny["grounded-sam"]["detector"])
    msg = str(err.value)
    assert "SAM vit_b" in msg and weights.SAM_CHECKPOINTS["vit_b"].url in msg and "PARTDISTILL_SAM" in msg
    with pytest.raises(TeacherError, match="not found"):
        make_teacher("grounded-sam", device="cpu", detector=tiny["grounded-sam"]["detector"], segmenter="/no/sam.pth")


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_sam_download_is_verified_and_atomic(monkeypatch, tmp_path):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    payload = b"not really a checkpoint"
    good = weights.SamCheckpoint("sam_test.pth", hashlib.sha256(payload).hexdigest(), len(payload))
    bad = weights.SamCheckpoint("sam_bad.pth", "0" * 64, len(payload))
    monkeypatch.setitem(weights.SAM_CHECKPOINTS, "vit_test", good)
    monkeypatch.setitem(weights.SAM_CHECKPOINTS, "vit_bad", bad)
    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, timeout: _Response(payload))
    path = weights.download_sam("vit_test")
    assert path == tmp_path / "weights" / "sam_test.pth" and path.read_bytes() == payload
    with pytest.raises(TeacherError, match="SHA-256"):
        weights.download_sam("vit_bad")
    assert sorted(p.name for p in (tmp_path / "weights").iterdir()) == ["sam_test.pth"]


def test_sam_architecture_is_read_from_the_checkpoint(tmp_path):
    from segment_anything import sam_model_registry

    official = sam_model_registry["vit_b"]()
    rebuilt = weights.build_sam(official.state_dict())
    enc = rebuilt.image_encoder
    assert enc.img_size == 1024 and len(enc.blocks) == 12 and enc.blocks[0].attn.num_heads == 12
    assert [i for i, b in enumerate(enc.blocks) if b.window_size == 0] == [2, 5, 8, 11]
    assert enc.blocks[0].window_size == 14
    # A tiny checkpoint as .safetensors and as a plain state-dict .pth (read with weights_only=True).
    tiny = build_tiny_sam(tmp_path / "tiny.safetensors")
    state = weights.sam_state_dict(tiny)
    torch.save(state, tmp_path / "tiny.pth")
    for path in (tiny, tmp_path / "tiny.pth"):
        sam = weights.load_sam(str(path), torch.device("cpu"))
        assert sam.image_encoder.img_size == 64
        for k, v in sam.state_dict().items():
            assert torch.equal(v, state[k])


def test_sam_checkpoints_are_never_unpickled(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"model": Path("/")}, evil)  # an arbitrary object: refused by weights_only loading
    with pytest.raises(TeacherError, match="not a readable SAM checkpoint"):
        weights.sam_state_dict(evil)
    not_sam = tmp_path / "not_sam.pth"
    torch.save({"weight": torch.zeros(2)}, not_sam)
    with pytest.raises(TeacherError, match="not a segment-anything SAM checkpoint"):
        weights.build_sam(weights.sam_state_dict(not_sam))


def test_registry_lists_every_teacher_and_rejects_unknown_names():
    assert set(REAL) <= set(TEACHERS)
    with pytest.raises(ValueError, match="unknown teacher"):
        make_teacher("no-such-teacher")


def test_cuda_without_a_gpu_is_a_teacher_error(tiny):
    if torch.cuda.is_available():
        pytest.skip("checks the error raised without a GPU, but a GPU is present here")
    with pytest.raises(TeacherError, match="CUDA is not available"):
        make_teacher("clipseg", device="cuda", **tiny["clipseg"])


def test_max_boxes_keeps_the_best_boxes_of_each_view(tiny, views):
    _, vw = views
    opts = {**tiny["gdino-boxes"], **TINY_THRESHOLDS["gdino-boxes"]}
    every = make_teacher("gdino-boxes", device="cpu", **opts).detect(vw, PARTS, "toy")
    best = make_teacher("gdino-boxes", device="cpu", **opts, max_boxes=2).detect(vw, PARTS, "toy")
    for v in range(vw.n_views):
        top = sorted((d.score for d in every if d.view == v), reverse=True)[:2]
        assert sorted((d.score for d in best if d.view == v), reverse=True) == pytest.approx(top)
    with pytest.raises(ValueError, match="max_boxes"):
        make_teacher("gdino-boxes", device="cpu", **opts, max_boxes=0)


@pytest.mark.parametrize("name", REAL)
def test_each_teacher_is_built_as_its_spec_declares(name, tiny):
    from partdistill_cli.teachers.specs import TEACHER_SPECS

    spec = TEACHER_SPECS[name]
    teacher = make_teacher(name, device="cpu", **tiny[name])
    assert teacher.kind == spec.kind and teacher.name.startswith(f"{name}(")
    settings = teacher.detector if name in ("grounded-sam", "gdino-boxes") else teacher
    assert getattr(settings, spec.threshold) == spec.default_threshold
    # Its weight options and their environment variables, as the command line and weight_env use them.
    assert set(spec.weights) == set(tiny[name])
    assert {spec.env(k) for k in spec.weights} <= {"PARTDISTILL_GDINO", "PARTDISTILL_SAM", "PARTDISTILL_OWLV2",
                                                   "PARTDISTILL_CLIPSEG"}  # fmt: skip
    with pytest.raises(ValueError, match="no weight option"):
        spec.env("nonsense")


def test_every_command_offers_the_teachers_and_weight_options_of_the_specs(tmp_path):
    import typer.main
    from typer.testing import CliRunner

    from partdistill_cli.cli import app
    from partdistill_cli.teachers.specs import REAL_TEACHERS, TEACHER_SPECS

    commands = typer.main.get_command(app).commands
    options = {k for spec in TEACHER_SPECS.values() for k in spec.weights}
    expected = {"segment": REAL_TEACHERS, "train-category": (*REAL_TEACHERS, "simulated"),
                "evaluate": ("simulated", *REAL_TEACHERS)}  # fmt: skip
    for command, teachers in expected.items():
        assert options | {"teacher", "threshold", "device"} <= {p.name for p in commands[command].params}, command
        args = [command, str(tmp_path), "--teacher", "bogus"] + (
            ["--category", "x"] if command == "train-category" else []
        )
        result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
        choices = ", ".join(f"'{t}'" for t in teachers)
        assert result.exit_code == 2 and f"is not one of {choices}" in " ".join(result.output.split()), command


def test_pickled_weights_are_refused_with_the_reason(tiny, tmp_path):
    import shutil

    from safetensors.torch import load_file

    folder = tmp_path / "clipseg"
    shutil.copytree(tiny["clipseg"]["clipseg"], folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(TeacherError) as err:
        make_teacher("clipseg", device="cpu", clipseg=str(folder))
    assert str(err.value) == (
        f"{folder}: the weights are a pickle (pytorch_model.bin), which can run code when loaded; partdistill "
        "reads a local model folder's weights as safetensors only. Convert them where you trust the file: load "
        "the model with transformers and save_pretrained() it (that writes model.safetensors)"
    )
    assert not weights.hub_cached(str(folder))


def test_probes_answer_within_their_bound_and_tell_reachable_from_not(monkeypatch):
    import http.server
    import threading
    import time

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200 if self.path == "/here" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(weights, "PROBE_TIMEOUT", 2.0)
    started = time.monotonic()
    urls = [f"{base}/here", f"{base}/gone", closed_port_url() + "/x", "http://10.255.255.1/x"]
    answers = weights.probe_urls(urls)
    server.shutdown()
    assert time.monotonic() - started < 4.0
    assert answers[urls[0]] is None
    assert answers[urls[1]] == f"127.0.0.1:{server.server_address[1]} answers HTTP 404 for it"
    assert "cannot be reached" in answers[urls[2]] and "refused" in answers[urls[2]].lower()
    assert answers[urls[3]] is not None  # unroutable (no answer in time) or, behind an intercepting proxy, a 404


def test_require_weights_asks_the_network_only_for_what_is_missing(no_network, tiny, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    asked = []

    def probe(urls):
        asked.append(urls)
        return dict.fromkeys(urls)  # every download could start

    monkeypatch.setattr(weights, "probe_urls", probe)
    weights.require_weights("grounded-sam", tiny["grounded-sam"])  # both local: nothing to ask
    assert asked == []
    weights.require_weights("grounded-sam", {"detector": tiny["grounded-sam"]["detector"]})
    assert asked == [[weights.SAM_CHECKPOINTS["vit_b"].url]]
    monkeypatch.setattr(weights, "probe_urls", lambda urls: dict.fromkeys(urls, "the host cannot be reached"))
    with pytest.raises(TeacherError) as err:
        weights.require_weights("grounded-sam", {})
    message = str(err.value)
    assert message.startswith("the grounded-sam teacher cannot start: Grounding DINO weights")
    assert message.count("not downloaded yet, and the host cannot be reached") == 2
    assert "hf download IDEA-Research/grounding-dino-tiny" in message and "--segmenter" in message


def test_weights_are_identified_by_revision_checksum_or_file_stats(no_network, tmp_path):
    from huggingface_hub import constants

    snapshot = Path(constants.HF_HUB_CACHE) / "models--org--model" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0123abcd")
    assert weights.identified("org/model") == "org/model@rev:0123abcd"
    assert weights.weights_identity("vit_b") == "sha256:ec2df62732614e57"
    checkpoint = tmp_path / "sam.safetensors"
    checkpoint.write_bytes(b"a")
    before = weights.weights_identity(str(checkpoint))
    assert before.startswith("files:") and weights.weights_identity(str(checkpoint)) == before
    checkpoint.write_bytes(b"b")  # same name and size, written a second later
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert weights.weights_identity(str(checkpoint)) != before
