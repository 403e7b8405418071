"""Safe output writing: every file is written to a temporary sibling and renamed into place."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from partdistill_cli.errors import UserError


class OutputError(UserError, OSError):
    """An output cannot be written (exists, unwritable, or would overwrite an input)."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on error delete it.

    An interrupted or failed write therefore never leaves a partial file at `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    """Create `path` if needed and check that files can be written in it; raise OutputError if not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".partdistill-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({exc.strerror or exc})") from exc
    return path


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
