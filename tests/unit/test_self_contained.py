"""A fresh clone is the whole project: nothing in it reads or cites a file outside the repository.

A development checkout once had a folder beside it (the event captures, the design contract) and
a clone anywhere else stopped at collection; these checks keep that from coming back.
"""

import re
import subprocess
from pathlib import Path

from tests.conftest import FIXTURES_DIR

ROOT = Path(__file__).resolve().parents[2]
# A path that climbs out of the checkout to a sibling folder, or the old contract's name.
OUTSIDE = re.compile(r"\.\./shared\b|(?<![\w/])DESIGN\.md")
CITATION = re.compile(r"docs/design\.md §(\d+)")


def tracked_text_files():
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, names.decode().split("\0")):
        path = ROOT / name
        if not path.is_file() or path.suffix in (".jsonl", ".json", ".tar", ".gz"):
            continue
        try:
            yield name, path.read_text()
        except UnicodeDecodeError:
            continue


def test_no_file_refers_outside_the_repository():
    offenders = [f"{name}:{number}: {line.strip()}"
                 for name, text in tracked_text_files() if name != Path(__file__).relative_to(ROOT).as_posix()
                 for number, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert offenders == []


def test_the_event_captures_are_in_the_repository():
    fixtures = Path(FIXTURES_DIR).resolve()
    assert fixtures.is_relative_to(ROOT)
    assert sorted(p.name for p in fixtures.glob("*.jsonl")) == [
        "rasa-3.6.21-pika-events-app_id-production.jsonl", "rasa-3.6.21-pika-events.jsonl"]
    assert (fixtures / "README.md").is_file()


def test_every_design_citation_names_a_section_the_document_has():
    design = (ROOT / "docs" / "design.md").read_text()
    sections = set(re.findall(r"^## (\d+)\.", design, re.MULTILINE))
    cited = {(name, number) for name, text in tracked_text_files() for number in CITATION.findall(text)}
    assert cited, "nothing cites docs/design.md"
    assert [(name, n) for name, n in sorted(cited) if n not in sections] == []
