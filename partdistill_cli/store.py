"""The cache (DESIGN.md section 7): trained students and per-shape teacher knowledge.

Layout under the cache root (`~/.cache/partdistill`, or `$PARTDISTILL_CACHE`, or an explicit `root`):

    students/<key>/student.safetensors   the networks' weights (safetensors: no pickles)
    students/<key>/card.json             what the student is: category, parts, teacher, settings, history
    knowledge/<fingerprint>/<key>.npz     a shape's lifted knowledge for one teacher / prompts / rendering
                                          (`KnowledgeStore`: `read_knowledge` / `write_knowledge`)
    knowledge/<fingerprint>/<key>.json    its card: the teacher and the weights that made it

A student's key hashes (category, ordered parts, teacher, student settings), so another part list, part order or
teacher never reuses a student. A teacher's name carries what identifies its weights' content (a Hub revision, a
checksum, or the names, sizes and times of local files), so knowledge and students made with other weights are
never reused either. Files are written atomically (the card last, so a half-written entry has no
card); an entry that cannot be read, belongs to something else or was written by an incompatible format is
reported and skipped, never loaded blindly.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from partdistill_cli.errors import UserError
from partdistill_cli.knowledge import Knowledge
from partdistill_cli.parts import PartList

if TYPE_CHECKING:
    from partdistill_cli.cameras import RenderSettings
    from partdistill_cli.shapes import Shape
    from partdistill_cli.student import DistillConfig, Student
    from partdistill_cli.teachers.base import Teacher

CACHE_ENV = "PARTDISTILL_CACHE"
CARD_FORMAT = "partdistill-student/1"
WEIGHTS_NAME = "student.safetensors"
CARD_NAME = "card.json"
KNOWLEDGE_CARD_FORMAT = "partdistill-knowledge-card/1"


class StoreError(UserError, ValueError):
    """A cache entry or student file cannot be used; the message says which and why."""


def cache_root(root: str | Path | None = None) -> Path:
    """The cache root: `root` if given, else `$PARTDISTILL_CACHE`, else `~/.cache/partdistill`."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "partdistill"


def check_cache_root(root: str | Path | None = None) -> Path:
    """The cache root (see `cache_root`), checked before any work is done: it must be a folder, or creatable
    as one, that this user can write. Nothing is created. Raises StoreError (one line) otherwise."""
    path = cache_root(root)
    existing = path
    while not (existing.exists() or existing.is_symlink()) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StoreError(
            f"{path}: the cache root cannot be a folder ({existing} is a file); pass another --cache-dir or set "
            f"{CACHE_ENV}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StoreError(f"{path}: cannot write the cache there ({existing} is not writable); pass another --cache-dir")
    return path


def _digest(obj: Any, length: int = 24) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:length]


def student_key(category: str, parts: list[str], teacher: str, config: DistillConfig) -> str:
    """Hash of what makes students interchangeable: category, ordered parts, teacher, student settings."""
    return _digest({"category": category, "parts": list(parts), "teacher": teacher, "config": config.model_dict()})


@dataclass
class StudentCard:
    """What a cached student is, beside its weights (written as `card.json`).

    The caller fills what only it knows (`category`, `parts`, `teacher`, `render` settings, `trained_on`);
    `save_student` fills the rest from the student: its config, epochs, loss curve, the epoch backward
    distillation started at, the package version and the creation time.
    """

    category: str
    parts: list[str]
    teacher: str
    render: dict = field(default_factory=dict)
    trained_on: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    epochs: int = 0
    loss: list[float] = field(default_factory=list)
    backward_epoch: int | None = None
    version: str = ""
    created: str = ""
    format: str = CARD_FORMAT
    key: str = ""

    @staticmethod
    def from_dict(d: dict) -> StudentCard:
        if not isinstance(d, dict) or d.get("format") != CARD_FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise StoreError(f"not a {CARD_FORMAT} card (format {found!r})")
        known = StudentCard.__dataclass_fields__
        return StudentCard(**{k: v for k, v in d.items() if k in known})


def save_student(student: Student, card: StudentCard, root: str | Path | None = None) -> Path:
    """Write `student` and its completed `card` into the cache; return the entry's folder.

    An existing entry with the same key is replaced (weights first, then the card, each atomically).
    """
    from safetensors.torch import save_file

    from partdistill_cli import __version__
    from partdistill_cli.io_utils import atomic_path, make_dirs, write_text

    if list(card.parts) != list(student.parts):
        raise StoreError(f"the card lists parts {card.parts}, the student predicts {student.parts}")
    key = student_key(card.category, card.parts, card.teacher, student.config)
    history = student.history or {}
    card = StudentCard(
        **{
            **asdict(card),
            "trained_on": list(card.trained_on or history.get("trained_on", [])),
            "config": student.config.model_dict(),
            "epochs": int(history.get("epochs", 0)),
            "loss": [float(x) for x in history.get("loss", [])],
            "backward_epoch": history.get("backward_epoch"),
            "version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "format": CARD_FORMAT,
            "key": key,
        }
    )
    entry = cache_root(root) / "students" / key
    make_dirs(entry)
    (entry / CARD_NAME).unlink(missing_ok=True)
    with atomic_path(entry / WEIGHTS_NAME) as tmp:
        save_file(student.state_dict(), str(tmp), metadata={"format": CARD_FORMAT, "key": key})
    write_text(entry / CARD_NAME, json.dumps(asdict(card), indent=1))
    return entry


def _card_path(weights: Path) -> Path:
    for candidate in (weights.with_suffix(".json"), weights.parent / f"{weights.stem}.card.json"):
        if candidate.is_file():
            return candidate
    return weights.parent / CARD_NAME


def read_card(path: str | Path) -> StudentCard:
    """The card of a cache entry folder or of a `.safetensors` file (its card beside it)."""
    path = Path(path)
    card_path = path / CARD_NAME if path.is_dir() else _card_path(path)
    try:
        data = json.loads(card_path.read_text())
    except FileNotFoundError as exc:
        raise StoreError(f"{path}: no student card ({card_path.name}) beside the weights") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{card_path}: unreadable student card ({exc})") from exc
    try:
        return StudentCard.from_dict(data)
    except (StoreError, TypeError) as exc:
        raise StoreError(f"{card_path}: {exc}") from exc


def load_student(path: str | Path, parts: list[str] | None = None, device: str = "cpu") -> Student:
    """Load a student from a cache entry folder or a `.safetensors` file with its card beside it.

    With `parts`, refuse (StoreError, a UserError) a student whose ordered part list differs: its logits
    would name other parts. Raises StoreError for a missing, corrupt or incompatible file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from partdistill_cli.student import Student

    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such student file or cache entry")
    weights = path / WEIGHTS_NAME if path.is_dir() else path
    card = read_card(path)
    if parts is not None and list(parts) != list(card.parts):
        raise StoreError(
            f"{path}: this student segments into {card.parts}, but the parts asked for are {list(parts)}; "
            "train a student for this part list (or pass the same parts in the same order)"
        )
    try:
        tensors = load_file(str(weights))
    except (OSError, SafetensorError, ValueError) as exc:
        raise StoreError(f"{weights}: unreadable student weights ({exc})") from exc
    meta = {"parts": card.parts, "config": card.config, "history": _history(card)}
    try:
        return Student.from_state(tensors, meta, device)
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"{weights}: {exc}") from exc


def copy_student(entry: Path, out: Path) -> tuple[Path, Path]:
    """Copy a cache entry's student to `out`.safetensors with its card as `out`.json (each atomically), where
    `load_student(out.safetensors)` reads it. Returns the two paths."""
    import shutil

    from partdistill_cli.io_utils import atomic_path

    targets = (Path(out).with_suffix(".safetensors"), Path(out).with_suffix(".json"))
    for src, dst in zip((Path(entry) / WEIGHTS_NAME, Path(entry) / CARD_NAME), targets, strict=True):
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    return targets


def _history(card: StudentCard) -> dict:
    return {
        "loss": card.loss,
        "epochs": card.epochs,
        "backward_epoch": card.backward_epoch,
        "trained_on": card.trained_on,
    }


def find_student(
    category: str,
    parts: list[str],
    teacher: str,
    config: DistillConfig,
    root: str | Path | None = None,
    device: str = "cpu",
) -> Student | None:
    """The cached student for (category, ordered parts, teacher, settings), or None.

    A corrupt, foreign (card not matching the key) or incompatible entry is reported on the console and
    treated as absent.
    """
    from partdistill_cli.console import console

    key = student_key(category, parts, teacher, config)
    entry = cache_root(root) / "students" / key
    if not (entry / CARD_NAME).is_file():
        return None
    try:
        card = read_card(entry)
        if card.category != category or list(card.parts) != list(parts) or card.teacher != teacher:
            raise StoreError(f"{entry}: the entry was written for another category, part list or teacher")
        if card.key != key:
            raise StoreError(f"{entry}: the card's key {card.key!r} does not match its folder")
        return load_student(entry, parts, device)
    except StoreError as exc:
        console.print(f"[yellow]warning:[/] skipping cached student: {exc}")
        return None


def knowledge_path(
    shape_fingerprint: str,
    teacher_name: str,
    parts: list[str],
    render_settings: dict,
    root: str | Path | None = None,
) -> Path:
    """Where the knowledge of one shape under one teacher, prompt list and rendering is cached (`.npz`).

    The file may not exist yet; write it with `write_knowledge` and read it with `read_knowledge`.
    """
    key = _digest({"teacher": teacher_name, "parts": list(parts), "render": render_settings})
    return cache_root(root) / "knowledge" / shape_fingerprint / f"{key}.npz"


def knowledge_card_path(path: Path) -> Path:
    """The card of the knowledge cache entry at `path` (`.npz`): a JSON file beside it, for people to read."""
    return path.with_suffix(".json")


def read_knowledge(path: Path, n_points: int, parts: list[str] | None = None) -> Knowledge | None:
    """The knowledge cached at `path` if it covers `n_points` points (and has exactly `parts`, when given), else
    None. A corrupt entry, or something else in its place (a folder), is reported and ignored."""
    from partdistill_cli.console import console

    if not (path.exists() or path.is_symlink()):
        return None
    try:
        knowledge = Knowledge.load(path)
    except ValueError as exc:
        console.print(f"[yellow]warning:[/] ignoring a corrupt knowledge cache entry: {exc}", soft_wrap=True)
        return None
    if knowledge.n_points != n_points or (parts is not None and knowledge.parts != list(parts)):
        return None
    return knowledge


def write_knowledge(knowledge: Knowledge, path: Path, teacher: Teacher | None = None) -> None:
    """Cache `knowledge` at `path` (atomically) and, given the `teacher` that made it, a card beside it
    (`knowledge_card_path`) saying which teacher and which weights. An entry that cannot be written (a folder
    in the way, a full disk) is reported and skipped: the run's result does not depend on the cache."""
    from partdistill_cli import __version__
    from partdistill_cli.console import console
    from partdistill_cli.io_utils import write_text

    try:
        knowledge.save(path)
        if teacher is not None:
            card = {
                "format": KNOWLEDGE_CARD_FORMAT,
                "teacher": teacher.name,
                # A teacher registered from outside may predate `Teacher.weights`.
                "weights": dict(getattr(teacher, "weights", {})),
                "parts": list(knowledge.parts),
                "points": knowledge.n_points,
                "units": knowledge.n_units,
                "version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            write_text(knowledge_card_path(path), json.dumps(card, indent=1))
    except OSError as exc:
        console.print(
            f"[yellow]warning:[/] could not cache the teacher knowledge at {path} ({exc}); the next run will ask "
            "the teacher again",
            soft_wrap=True,
        )


@dataclass(frozen=True)
class KnowledgeStore:
    """Each shape's teacher knowledge, computed once and read back: the one place knowledge is cached.

    An entry is keyed by the shape's geometry, the teacher (its name carries its settings and what identifies
    the content of its weights: another model in the same folder is another key), the
    ordered part list with its background part, the rendering and the category (both shape the prompts and
    the views). Entries live in the cache (`root`, see `cache_root`), or, with `folder`, in that folder as
    `NAME.<shape>.<key>.npz` so that a user can keep a data set's knowledge beside it.
    """

    root: Path | None = None
    folder: Path | None = None

    def path(self, shape: Shape, teacher: str, parts: PartList, settings: RenderSettings, category: str | None) -> Path:
        """Where the knowledge of `shape` under `teacher`, `parts`, `settings` and `category` is kept."""
        render_key = {**settings.to_dict(), "category": category}
        path = knowledge_path(shape.fingerprint(), teacher, parts.cache_key(), render_key, self.root)
        if self.folder is not None:
            return Path(self.folder) / f"{shape.name}.{path.parent.name[:12]}.{path.stem[:12]}.npz"
        return path

    def load(self, path: Path, shape: Shape, parts: PartList) -> Knowledge | None:
        """The knowledge at `path` if it is there and fits `shape` and `parts` (see `read_knowledge`: a corrupt
        entry, or a folder in its place, is reported and treated as absent)."""
        return read_knowledge(path, shape.n_points, parts.names)

    def save(self, knowledge: Knowledge, path: Path, teacher: Teacher | None = None) -> None:
        """Keep `knowledge` at `path`, with a card naming the `teacher` and its weights (see `write_knowledge`:
        an entry that cannot be written is reported and skipped)."""
        write_knowledge(knowledge, path, teacher)
