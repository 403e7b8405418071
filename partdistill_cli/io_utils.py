"""Safe output writing: every file is written to a temporary sibling and renamed into place.

While the command line runs, the process keeps a record (`RECORD`) of the folders it made, the output folders
it was given and the files it put in place, so that it can say what an interrupted or failed run kept and remove
the output folders it made and left empty. (Off otherwise: a long Python loop over shapes keeps no list.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from partdistill_cli.errors import UserError


class OutputError(UserError, OSError):
    """An output cannot be written (exists, unwritable, or would overwrite an input)."""


@dataclass
class WriteRecord:
    """What this process made while `active`: `folders` created (parents first), `outputs` (the folders commands
    write their results into, see `check_writable_dir`) and `files` put in place (by `atomic_path` and
    `write_all`)."""

    folders: list[Path] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    active: bool = False

    def start(self) -> None:
        """Record from now on, from nothing."""
        self.folders.clear()
        self.outputs.clear()
        self.files.clear()
        self.active = True

    def stop(self) -> None:
        self.active = False

    def add(self, what: list[Path], *paths: Path) -> None:
        if self.active:
            what.extend(paths)

    def _in_outputs(self, path: Path) -> bool:
        return any(path == o or o in path.parents for o in self.outputs)

    def written_outputs(self) -> list[Path]:
        """The files put in place in the output folders (or below them) that are still there (a journal is put
        in place, then deleted), each once, in the order written."""
        return [p for p in dict.fromkeys(self.files) if self._in_outputs(p) and p.exists()]

    def remove_empty_outputs(self) -> None:
        """Remove the folders made for outputs (an output folder, a folder in one or a parent made to hold one)
        that are still empty, deepest first. Folders that were there before, or hold anything, stay."""
        for folder in reversed(self.folders):
            related = self._in_outputs(folder) or any(folder in o.parents for o in self.outputs)
            if related and folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                folder.rmdir()


RECORD = WriteRecord()


def make_dirs(path: str | Path) -> list[Path]:
    """`path.mkdir(parents=True, exist_ok=True)`; returns the folders it created, parents first (also recorded
    in `RECORD`)."""
    path = Path(path)
    missing = []
    probe = path
    while not (probe.exists() or probe.is_symlink()) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    RECORD.add(RECORD.folders, *reversed(missing))
    return missing[::-1]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on error delete it.

    An interrupted or failed write therefore never leaves a partial file at `path`.
    """
    path = Path(path)
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        give_usual_permissions(tmp_path)
        try:
            os.replace(tmp_path, path)
        except OSError as exc:  # a folder (or something else unreplaceable) appeared at `path`
            raise OutputError(f"{path}: cannot write the file there ({exc.strerror or exc})") from exc
        RECORD.add(RECORD.files, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def give_usual_permissions(path: Path) -> None:
    """mkstemp creates a file private (0600); give an output the permissions a new file gets (umask) before it
    appears under its name."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def check_writable_dir(path: str | Path) -> Path:
    """Check that files can be written in folder `path` (creating it and a probe file there, then removing
    both: nothing is left until something is written) and record it as an output folder (`RECORD`); raise
    OutputError if not."""
    path = Path(path)
    made: list[Path] = []
    try:
        made = make_dirs(path)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".partdistill-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({exc.strerror or exc})") from exc
    finally:
        for folder in reversed(made):
            folder.rmdir()
    RECORD.add(RECORD.outputs, path)
    return path


PACKAGE_DIR = Path(__file__).resolve().parent


def beside_input(source: str | Path) -> Path:
    """The default output folder of a run on `source` (a file or an object folder): the folder holding it,
    unless that lies inside the installed partdistill package (a shipped sample), which is no place for a
    user's files (it may be read-only, and reinstalling wipes it): the current folder then."""
    folder = Path(source).resolve().parent
    if folder == PACKAGE_DIR or PACKAGE_DIR in folder.parents:
        return Path.cwd()
    return Path(source).parent


def check_not_overwriting(outputs: list[Path], inputs: list[Path], overwrite: bool) -> None:
    """Refuse to write an output file over an input or a folder, ever, or over an existing file or link (a
    dangling one too) unless `overwrite`."""
    resolved_inputs = {Path(p).resolve() for p in inputs}
    for out in map(Path, outputs):
        if out.resolve() in resolved_inputs:
            raise OutputError(f"{out}: refusing to write over an input file")
        if out.is_dir():
            raise OutputError(f"{out}: is a folder; cannot write the file there")
        if (out.exists() or out.is_symlink()) and not overwrite:
            raise OutputError(f"{out}: already exists (pass --overwrite to replace it)")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
