"""docs/methods.md lists every registered method once, links to headings that exist, and its
example commands use only options that the command or the method takes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import dnnergy
from dnnergy.compress import get_method

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROWS = [line for line in (DOCS / "methods.md").read_text().splitlines() if line.startswith("| `")]


def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if re.match(r"#{1,4} ", line)}


def test_every_registered_method_has_exactly_one_row():
    names = [re.match(r"\| `(\w+)`", row).group(1) for row in ROWS]
    assert sorted(names) == sorted(set(names)) and set(names) == set(dnnergy.list_methods())


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.split("`")[1])
def test_links_point_at_existing_headings(row):
    for page, anchor in re.findall(r"\]\(([\w-]+\.md)(?:#([\w-]+))?\)", row):
        assert (DOCS / page).exists(), page
        if anchor:
            assert anchor in anchors(DOCS / page), f"{page}#{anchor}"


@pytest.mark.parametrize("row", [r for r in ROWS if "dnnergy compress" in r], ids=lambda row: row.split("`")[1])
def test_example_options_are_known(row):
    command = shlex.split(re.findall(r"`(dnnergy compress [^`]+)`", row)[0])
    method = get_method(command[command.index("--method") + 1])
    taken = {p.name.replace("_", "-") for p in method.params} | {"method", "data", "max-accuracy-drop", "hardware", "qat"}
    assert {arg[2:] for arg in command if arg.startswith("--")} <= taken
