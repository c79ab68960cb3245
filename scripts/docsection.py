"""Rewrite one marked section of a Markdown file (benchmark scripts write their tables so)."""
from pathlib import Path


def replace_section(doc: Path, start: str, end: str, heading: str, block: str) -> None:
    """Put `block` (which begins with `start` and ends with `end`) in place of the section
    between those markers, or append it under `heading` when the file has none yet."""
    text = doc.read_text()
    if start in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{heading}\n\n" + block + "\n"
    doc.write_text(text)
