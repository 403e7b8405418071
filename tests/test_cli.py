"""The command line: fast help, real outputs, and one clear line for every kind of bad input."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from helpers import closed_port_url


def run(*args, cwd=None):
    env = {**os.environ, "PARTDISTILL_CACHE": str(cwd or "."), "COLUMNS": "200", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "partdistill_cli.cli", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd
    )


def assert_user_error(proc, needle):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), proc.stderr
    assert needle.lower() in proc.stderr.lower(), proc.stderr


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from partdistill_cli import cli\n"
        "try:\n    cli.app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'open3d', 'transformers', 'trimesh', 'scipy') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    for command in ("segment", "render", "evaluate", "train-category", "export", "doctor"):
        assert command in out.stdout


@pytest.fixture
def box_file(tmp_path):
    path = tmp_path / "box.obj"
    trimesh.creation.box().export(path)
    return path


def test_render_writes_views_and_sheet(tmp_path, box_file):
    out = tmp_path / "views"
    proc = run("render", box_file, "--views", "3", "--resolution", "64", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "box.view00.png",
        "box.view01.png",
        "box.view02.png",
        "box.views.png",
    ]
    again = run("render", box_file, "--views", "3", "--resolution", "64", "--out", out)
    assert_user_error(again, "already exists")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("missing.obj", None, "no such file"),
        ("shape.abc", b"1 2 3\n", "unknown extension"),
        ("empty.ply", b"", "empty"),
        ("garbage.glb", bytes(range(256)) * 8, "not a GLB file"),
        ("nan.xyz", b"0 0 0\n1 nan 0\n0 1 1\n", "NaN"),
        ("one.xyz", b"0 0 0\n", "at least 2 points"),
    ],
)
def test_render_bad_input_one_line_no_output(tmp_path, name, content, needle):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    assert_user_error(run("render", path, "--out", out), needle)
    assert not out.exists() or not any(out.iterdir())


def test_truncated_mesh(tmp_path):
    data = trimesh.exchange.ply.export_ply(trimesh.creation.icosphere(), encoding="binary")
    path = tmp_path / "t.ply"
    path.write_bytes(data[: len(data) // 3])
    assert_user_error(run("render", path, "--out", tmp_path / "o"), str(path.name))


def test_unwritable_out(tmp_path, box_file):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert_user_error(run("render", box_file, "--out", blocker / "sub"), "cannot write")


def test_evaluate_labels_of_wrong_length(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "meta.json").write_text('{"category": "box", "parts": ["a", "b"]}')
    trimesh.creation.box().export(folder / "b.obj")
    np.save(folder / "b.face_labels.npy", np.zeros(5, dtype=np.int64))
    report = tmp_path / "r.json"
    assert_user_error(run("evaluate", folder, "--format", "labeled-mesh", "--out", report), "5")
    assert not report.exists()


def test_evaluate_writes_report(tmp_path):
    report = tmp_path / "r.json"
    proc = run(
        "evaluate", "procedural:mug", "--per-category", "1", "--views", "4", "--resolution", "128", "--out", report
    )
    assert proc.returncode == 0, proc.stderr
    assert "mug" in proc.stderr and report.exists()


def test_evaluate_bad_noise_and_method(tmp_path):
    assert_user_error(run("evaluate", "procedural:mug", "--noise", "loud"), "neither a preset")
    assert_user_error(run("evaluate", "procedural:mug", "--method", "magic"), "unknown method")


def test_segment_needs_parts(tmp_path, box_file):
    assert_user_error(run("segment", box_file), "--parts")
    assert_user_error(run("segment", box_file, "--parts", "a,a"), "twice")


def test_save_knowledge_is_not_overwritten_without_flag(tmp_path):
    folder = tmp_path / "k"
    args = [
        "evaluate",
        "procedural:mug",
        "--per-category",
        "1",
        "--views",
        "2",
        "--resolution",
        "64",
        "--save-knowledge",
        folder,
    ]
    assert run(*args).returncode == 0
    before = sorted(p.name for p in folder.rglob("*"))
    assert_user_error(run(*args), "--overwrite")
    assert sorted(p.name for p in folder.rglob("*")) == before
    assert run(*args, "--overwrite").returncode == 0


def run_with_fake_open3d(tmp_path, init: str, *args):
    """Run the CLI with an `open3d` package whose import does what `init` says (a broken system library, or
    the ImportError pybind11 raises when Ctrl-C lands in open3d's module initialisation: measured with a
    timer during a real `import open3d`, 4 of 7 delays gave `ImportError: initialization failed` from
    KeyboardInterrupt)."""
    package = tmp_path / "fake" / "open3d"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    path = os.pathsep.join([str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "PARTDISTILL_CACHE": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "partdistill_cli.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and a child inherits that; Python then installs no
    # KeyboardInterrupt handler. Reset it so the run reacts to Ctrl-C as in a terminal, wherever the tests run.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_missing_libusb_is_one_line_naming_the_package(tmp_path, box_file):
    init = 'raise OSError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")\n'
    proc = run_with_fake_open3d(tmp_path, init, "render", box_file, "--views", "1", "--out", tmp_path / "v")
    assert_user_error(proc, "sudo apt-get install -y libusb-1.0-0")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "v").exists() or not any((tmp_path / "v").iterdir())


def test_ctrl_c_during_the_open3d_import_says_interrupted(tmp_path, box_file):
    init = 'raise ImportError("initialization failed") from KeyboardInterrupt()\n'
    proc = run_with_fake_open3d(tmp_path, init, "render", box_file, "--views", "1", "--out", tmp_path / "v")
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "interrupted; nothing was written", proc.stderr


def test_ctrl_c_says_nothing_was_written_and_leaves_no_output_folder(tmp_path, box_file):
    # A real SIGINT, delivered while the run imports open3d (as a Ctrl-C in the first seconds of a run does):
    # Python raises KeyboardInterrupt there, which typer turns into exit code 130.
    init = "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n"
    out = tmp_path / "new" / "views"
    proc = run_with_fake_open3d(tmp_path, init, "render", box_file, "--views", "1", "--out", out)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "interrupted; nothing was written", proc.stderr
    assert not (tmp_path / "new").exists()


def test_ctrl_c_after_some_files_says_what_was_kept(tmp_path, box_file, monkeypatch, capsys):
    from PIL import Image

    from partdistill_cli import cli

    made = []
    fromarray = Image.fromarray

    def interrupted_at_the_third_image(*args, **kwargs):
        made.append(1)
        if len(made) == 3:
            raise KeyboardInterrupt
        return fromarray(*args, **kwargs)

    monkeypatch.setattr(Image, "fromarray", interrupted_at_the_third_image)
    out = tmp_path / "views"
    monkeypatch.setattr(sys, "argv", ["partdistill", "render", str(box_file), "--views", "4", "--resolution", "64",
                                      "--out", str(out)])  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 130
    kept = [out / "box.view00.png", out / "box.view01.png"]
    assert sorted(out.iterdir()) == kept  # no temporary left
    assert capsys.readouterr().err.strip() == f"interrupted; kept 2 files written before it: {kept[0]}, {kept[1]}"


def test_an_import_error_that_is_not_an_interrupt_is_not_hidden(tmp_path, box_file):
    proc = run_with_fake_open3d(tmp_path, 'raise ImportError("a real bug")\n', "render", box_file, "--views", "1")
    assert proc.returncode == 1 and "ImportError: a real bug" in proc.stderr


def test_evaluate_out_that_is_a_folder_fails_before_the_evaluation(tmp_path):
    (tmp_path / "report").mkdir()
    proc = run("evaluate", "procedural:mug", "--per-category", "1", "--out", tmp_path / "report", "--overwrite")
    assert_user_error(proc, f"{tmp_path / 'report'}: is a folder; cannot write the file there")
    assert "teacher: simulated" not in proc.stderr  # printed when the evaluation starts


def test_noise_json_of_the_wrong_type_is_one_line(tmp_path):
    noise = tmp_path / "noise.json"
    noise.write_text('{"miss": "lots"}')
    assert_user_error(run("evaluate", "procedural:mug", "--noise", noise), "noise 'miss' must be a number")


def no_network_env(tmp_path) -> dict[str, str]:
    """A first run with empty caches, HF_HUB_OFFLINE unset and no way out: the Hugging Face endpoint is a closed
    port and https (SAM's download) goes through a proxy that is a closed port."""
    closed = closed_port_url()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "PARTDISTILL_GDINO", "PARTDISTILL_SAM")}
    return env | {
        "HF_HOME": str(tmp_path / "hf"),
        "PARTDISTILL_CACHE": str(tmp_path / "cache"),
        "HF_ENDPOINT": closed,
        "https_proxy": closed,
        "HTTPS_PROXY": closed,
        "COLUMNS": "200",
    }


def test_an_offline_first_run_names_every_missing_weight_in_one_line_within_seconds(tmp_path, box_file):
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "partdistill_cli.cli", "segment", str(box_file), "--parts", "back,seat",
         "--out", str(tmp_path / "out"), "--preview"],
        capture_output=True, text=True, env=no_network_env(tmp_path), timeout=90,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert_user_error(proc, "the grounded-sam teacher cannot start")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # no retry chatter
    for needle in ("Grounding DINO", "hf download IDEA-Research/grounding-dino-tiny", "--detector", "PARTDISTILL_GDINO",
                   "SAM vit_b", "sam_vit_b_01ec64.pth", "--segmenter", "PARTDISTILL_SAM", "partdistill doctor"):  # fmt: skip
        assert needle in proc.stderr, needle
    assert elapsed < 30, elapsed
    assert not (tmp_path / "out").exists()


def test_part_names_with_spaces_and_no_comma_are_warned_about(tmp_path, box_file):
    proc = run("segment", box_file, "--parts", "arm  back", "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.stderr.splitlines()[0] == (
        "warning: --parts 'arm  back' is one part named 'arm  back': part names are separated by commas "
        "(--parts arm,back); spaces inside a name are kept"
    ), proc.stderr
    proc = run("segment", box_file, "--parts", "door handle,lid", "--out", tmp_path / "out", cwd=tmp_path)
    assert "warning" not in proc.stderr


def test_render_of_a_shipped_sample_writes_into_the_current_folder(tmp_path):
    from partdistill_cli import __file__ as package_init

    package = Path(package_init).parent
    sample = package / "assets" / "samples" / "chair" / "chair_0.obj"
    before = sorted(p for p in package.rglob("*") if "__pycache__" not in p.parts)
    try:
        proc = run("render", sample, "--views", "2", "--resolution", "64", cwd=tmp_path)
        after = sorted(p for p in package.rglob("*") if "__pycache__" not in p.parts)
        assert proc.returncode == 0, proc.stderr
        assert after == before
        assert sorted(p.name for p in (tmp_path / "chair_0.views").iterdir()) == [
            "chair_0.view00.png", "chair_0.view01.png", "chair_0.views.png"]  # fmt: skip
    finally:
        import shutil

        shutil.rmtree(sample.parent / "chair_0.views", ignore_errors=True)


def test_render_a_partnet_mobility_object_folder(tmp_path):
    folder = tmp_path / "obj" / "42"
    for name, x in (("a", 0.0), ("b", 2.0)):
        mesh = trimesh.creation.box(bounds=[[x, 0, 0], [x + 1, 1, 1]])
        (folder / "textured_objs").mkdir(parents=True, exist_ok=True)
        mesh.export(folder / "textured_objs" / f"{name}.obj")
    objs = {n: {"file": f"textured_objs/{n}.obj", "partnete_label": "lid"} for n in ("a", "b")}
    (folder / "parts.json").write_text(json.dumps({"category": "Box", "partnete_part_names": ["lid"], "objs": objs}))
    proc = run("render", folder, "--views", "1", "--resolution", "64", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "obj" / "42.views").iterdir()) == ["42.view00.png", "42.views.png"]


COMMANDS = {"segment": "SHAPE...", "render": "SHAPE", "evaluate": "DATA", "train-category": "FOLDER", "export": "SOURCE",
            "doctor": ""}  # fmt: skip


def help_text(command: str) -> str:
    from typer.testing import CliRunner

    from partdistill_cli.cli import app

    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_help_shows_flags_without_a_type_and_arguments_as_in_the_text():
    for command, argument in COMMANDS.items():
        text = help_text(command)
        usage = text.split("Usage:")[1].split("[OPTIONS]")[1][:20]
        assert "<bool>" not in text and "{" not in usage and "}" not in usage, command
        assert f"Usage: partdistill {command} [OPTIONS] {argument}".strip() in text, command
    assert "--preview Also write" in help_text("segment")


def test_options_say_one_thing_with_one_name_and_old_names_stay_hidden():
    segment, evaluate, train = help_text("segment"), help_text("evaluate"), help_text("train-category")
    assert "--finetune-epochs" in segment and "--finetune-steps" not in segment
    assert "<full|forward|vote-fill>" in segment and "<full|forward|vote>" not in segment
    assert "--report" in evaluate and "--out" not in evaluate
    assert "--method <full|forward>" in train and "--mode" not in train
    for text in (segment, help_text("render"), evaluate, train):
        assert "--points" in text and "by default:" in text.split("--points")[1][:400]
    for option in ("--detector", "--segmenter", "--clipseg"):
        assert "safetensors" in segment.split(option)[1][:300], option
    with_device = [command for command in COMMANDS if "--device" in help_text(command)]
    assert with_device == ["segment", "evaluate", "train-category"]
    assert all("--device <auto|cpu|cuda>" in help_text(command) for command in with_device)


def test_old_option_names_still_work_with_a_warning(tmp_path, box_file):
    proc = run("segment", box_file, "--parts", "a,b", "--finetune-steps", "2", "--method", "vote", cwd=tmp_path)
    assert "warning: --finetune-steps is deprecated; use --finetune-epochs" in proc.stderr
    assert "warning: --method vote is deprecated; use --method vote-fill (the same method)" in proc.stderr
    assert_user_error(proc, "teacher cannot start")  # parsed, then stopped by the weights (offline)
    both = run("segment", box_file, "--parts", "a,b", "--finetune-steps", "2", "--finetune-epochs", "1", cwd=tmp_path)
    assert_user_error(
        both, "--finetune-epochs and its old name --finetune-steps were both given; give --finetune-epochs"
    )
    report = tmp_path / "r.json"
    proc = run(
        "evaluate", "procedural:mug", "--per-category", "1", "--views", "1", "--resolution", "64", "--out", report
    )
    assert proc.returncode == 0 and "warning: --out is deprecated; use --report" in proc.stderr
    assert json.loads(report.read_text())["summary"]
    assert "teacher: simulated (evaluation only: it reads ground truth), noise 'default', 1 shape," in proc.stderr


def test_a_segment_run_prints_no_library_progress_bars_and_counts_in_words(tiny, tmp_path, box_file):
    env = {**os.environ, "PARTDISTILL_CACHE": str(tmp_path / "cache"), "COLUMNS": "300", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "partdistill_cli.cli", "segment", str(box_file), "--parts", "a,b", "--teacher",
         "clipseg", "--clipseg", tiny["clipseg"]["clipseg"], "--views", "1", "--resolution", "64", "--points", "300",
         "--threshold", "0", "--method", "vote-fill", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Loading weights" not in proc.stderr and "it/s" not in proc.stderr, proc.stderr
    assert " from 1 view (clipseg(" in proc.stderr
    assert json.loads((tmp_path / "out" / "box.labels.json").read_text())["meta"]["method"] == "vote-fill"
