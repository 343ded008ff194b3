"""The course map: every lab is linked from 00-index and from the lesson it follows, with a time
estimate, and every link between notebooks (lessons, labs) leads to a file that exists."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted(p.name for p in (ROOT / "grader" / "source").iterdir() if p.is_dir())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "labs").glob("*/*.ipynb"))
_LINK = re.compile(r"\]\(([^)#\s]+\.ipynb)\)")


def _markdown(path: Path) -> str:
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                     if c.cell_type == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_between_notebooks_lead_somewhere(path):
    broken = [link for link in _LINK.findall(_markdown(path))
              if not (path.parent / link).resolve().is_file()]
    assert not broken, f"{path.relative_to(ROOT)} links to missing notebooks: {broken}"


@pytest.mark.parametrize("lab", LABS)
def test_each_lab_is_on_the_map_and_says_how_long_it_takes(lab):
    link = f"labs/{lab}/{lab}.ipynb"
    index = _markdown(ROOT / "notebooks" / "00-index.ipynb")
    assert re.search(rf"\(\.\./{re.escape(link)}\) \(\d+ min\)", index), f"00-index lacks {link}"
    lessons = [p.stem for p in (ROOT / "notebooks").glob("[01][0-9]-*.ipynb")
               if p.stem != "00-index" and f"(../{link})" in _markdown(p)]
    assert len(lessons) == 1, f"{lab} should be linked from one lesson, not {lessons}"
    released = _markdown(ROOT / link)
    assert re.search(rf"About \d+ minutes · after the lesson \[{lessons[0]}\]", released)
