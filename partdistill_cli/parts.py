"""The part list a shape is segmented into, and its optional background part.

Where the asked parts do not cover the whole shape (`--parts lid` on a bottle, PartNetE's partial lists), a
background part collects the surface no listed part claims. It is a property of the part list: always last,
always named `BACKGROUND_PART`. Knowledge files, students and results store the full list of names
(`PartList.names`, background last), so a list read back from any of them says whether it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from partdistill_cli.errors import ConfigError

BACKGROUND_PART = "other"
OtherMode = Literal["auto", "on", "off"]
OTHER_MODES: tuple[str, ...] = ("auto", "on", "off")


class PartsError(ConfigError):
    """A part list cannot be used (empty, a name twice, the reserved background name)."""


@dataclass(frozen=True)
class PartList:
    """The C ordered parts a segmentation names.

    Attributes:
        asked: the part names asked for, in label order (never the background part).
        background: whether a background part follows them (label `len(asked)`).
    """

    asked: tuple[str, ...]
    background: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "asked", tuple(str(p) for p in self.asked))
        if not self.asked:
            raise PartsError("the part list is empty")
        if len(set(self.asked)) != len(self.asked):
            raise PartsError(f"the part list names a part twice: {', '.join(self.asked)}")
        if self.background and BACKGROUND_PART in self.asked:
            raise PartsError(f"a part named {BACKGROUND_PART!r} cannot sit beside the background part of that name")

    @property
    def names(self) -> list[str]:
        """All C part names, label order: the asked parts, then the background part if there is one."""
        return [*self.asked, BACKGROUND_PART] if self.background else list(self.asked)

    @property
    def background_index(self) -> int | None:
        """The background part's label, or None."""
        return len(self.asked) if self.background else None

    def __len__(self) -> int:
        return len(self.asked) + int(self.background)

    def cache_key(self) -> list[str]:
        """What identifies these prompts in the knowledge cache (the format every cache entry was written with)."""
        return [*self.asked, f"+{BACKGROUND_PART}"] if self.background else list(self.asked)

    @staticmethod
    def of_names(names: Sequence[str]) -> PartList:
        """The part list of stored names (knowledge, students, results): a last name `BACKGROUND_PART` is the
        background part."""
        names = [str(n) for n in names]
        if len(names) > 1 and names[-1] == BACKGROUND_PART:
            return PartList(tuple(names[:-1]), background=True)
        return PartList(tuple(names))

    @staticmethod
    def parse(parts: str | Sequence[str] | None, category: str | None = None, other: OtherMode = "auto") -> PartList:
        """The part list a user asks for: `parts` (a comma-separated string or a sequence of names), else the
        category's known parts. `other`: "on" adds the background part, "auto" adds it when one part is asked
        for (everything else would be forced into that part), "off" never. Raises `PartsError`."""
        if other not in OTHER_MODES:
            raise PartsError(f"other must be one of {', '.join(OTHER_MODES)}, got {other!r}")
        text = parts if isinstance(parts, str) else ",".join(parts or [])
        names = [p.strip() for p in text.split(",") if p.strip()]
        if len(set(names)) != len(names):
            raise PartsError(f"--parts lists a part twice: {text}")
        if BACKGROUND_PART in names:
            raise PartsError(f"'{BACKGROUND_PART}' is reserved for the background part (see --other)")
        if not names and category:
            from partdistill_cli.datasets import default_parts

            names = default_parts(category) or []
            if not names:
                raise PartsError(f"no default parts known for category {category!r}: give them with --parts")
        if not names:
            raise PartsError("give the part names with --parts (e.g. --parts arm,back,seat,leg) or a known --category")
        return PartList(tuple(names), background=other == "on" or (other == "auto" and len(names) == 1))


def spaces_warning(parts: str | Sequence[str] | None) -> str | None:
    """A warning when a `--parts` string holds no comma but a name with spaces (`"arm back"`): that is one part
    named "arm back", which is rarely what was meant. Names are separated by commas only, because part names
    may hold spaces ("door handle"); None when there is nothing to warn about."""
    if not isinstance(parts, str) or "," in parts or len(parts.split()) < 2:
        return None
    name = parts.strip()
    return (
        f"--parts {parts!r} is one part named {name!r}: part names are separated by commas "
        f"(--parts {','.join(name.split())}); spaces inside a name are kept"
    )
