"""Text prompts for the vision-language teachers: one phrase per part from a template."""

from __future__ import annotations

import string

DEFAULT_TEMPLATE = "the {part} of a {category}"
FIELDS = {"part", "category"}


def check_template(template: str) -> str:
    """Return `template` if it names {part} and no field other than {part} / {category}; else ValueError."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ValueError(f"prompt template {template!r} is not a valid format string ({exc})") from exc
    if "part" not in names or not names <= FIELDS:
        raise ValueError(
            f"prompt template {template!r} must contain {{part}} and may contain {{category}} (no other fields)"
        )
    return template


def readable(name: str) -> str:
    """A part or category name as words: "foot_pad" -> "foot pad", "StorageFurniture" -> "storage furniture"."""
    words = []
    # '.' would split a Grounding DINO caption into phrases, so it goes too.
    for chunk in name.replace("_", " ").replace("-", " ").replace(".", " ").split():
        word = ""
        for i, ch in enumerate(chunk):
            if ch.isupper() and i and chunk[i - 1].islower():
                word += " "
            word += ch
        words.append(word.lower())
    return " ".join(words)


def part_prompts(parts: list[str], category: str | None, template: str = DEFAULT_TEMPLATE) -> list[str]:
    """One prompt per part. Without a category, a template that mentions it falls back to the part alone."""
    check_template(template)
    empty = [p for p in parts if not readable(p)]
    if not parts or empty:
        raise ValueError(f"the teacher needs at least one part, and no empty part names; got {parts!r}")
    if category is None and "{category}" in template:
        template = "{part}"
    cat = readable(category) if category else ""
    return [template.format(part=readable(p), category=cat) for p in parts]


def part_span(parts: list[str], category: str | None, template: str, index: int) -> tuple[int, int]:
    """(start, end) character span of the part's own words inside its prompt `part_prompts(...)[index]`."""
    if category is None and "{category}" in template:
        template = "{part}"
    head = template.split("{part}", 1)[0]
    start = len(head.format(category=readable(category) if category else ""))
    return start, start + len(readable(parts[index]))
