"""The reader's-eye check and the PDF, on a tiny Jupyter Book that has one of each fault.

The book is built without ``-W`` on purpose: every fault here is one Sphinx lets through (raw
HTML, a stored error output), which is exactly what the browser check exists to catch.
"""

import base64
import io
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from qdgs.publish import BookCheckError, all_pages, check_pages, make_pdf, reading_order

pytestmark = pytest.mark.slow

CONFIG = """title: Tiny book
author: tests
only_build_toc_files: true
execute:
  execute_notebooks: "off"
"""
TOC = """format: jb-book
root: intro
chapters:
  - file: good
  - file: broken
  - file: crashed
"""
INTRO = """# Tiny book

![a red square](square.png)

Go to <a href="good.html#a-section">a section</a>, or {doc}`good`. <a name="bare-anchor"></a>
"""
GOOD = """# Good page

## A section

An inline figure: <img src="data:image/png;base64,{png}" alt="inline">
"""
BROKEN = """# Broken page

<img src="_static/never-built.png" alt="gone">
<img src="data:image/png;base64," alt="empty">

<a href="nowhere.html">a page that does not exist</a>
<a href="good.html#no-such-section">an anchor that does not exist</a>
"""


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _crashed_notebook() -> nbformat.NotebookNode:
    """A notebook whose stored output is a cell that raised, as papermill would leave it."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell("1 / 0", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                           traceback=["Traceback (most recent call last):",
                                                      "ZeroDivisionError: division by zero"])]
    nb.cells = [nbformat.v4.new_markdown_cell("# Crashed chapter"), cell]
    return nb


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory) -> Path:
    """The HTML of a four-page book: intro and good are clean, broken and crashed are not."""
    src = tmp_path_factory.mktemp("tiny_book")
    (src / "_config.yml").write_text(CONFIG)
    (src / "_toc.yml").write_text(TOC)
    (src / "square.png").write_bytes(_png())
    (src / "intro.md").write_text(INTRO)
    (src / "good.md").write_text(GOOD.format(png=base64.b64encode(_png()).decode()))
    (src / "broken.md").write_text(BROKEN)
    nbformat.write(_crashed_notebook(), src / "crashed.ipynb")
    jb = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jb), "build", str(src)], check=True, capture_output=True)
    return src / "_build" / "html"


def test_reading_order_follows_the_toc(tiny_book):
    assert reading_order(tiny_book) == ["intro.html", "good.html", "broken.html", "crashed.html"]
    assert {"genindex.html", "search.html"} <= set(all_pages(tiny_book))


def test_check_finds_every_fault_and_only_those(tiny_book, tmp_path):
    with pytest.raises(BookCheckError) as caught:
        check_pages(tiny_book, tmp_path / "shots")
    found = {(p.page, p.kind) for p in caught.value.problems}
    details = "\n".join(map(str, caught.value.problems))
    assert found == {("broken.html", "missing image"), ("broken.html", "broken link"),
                     ("crashed.html", "error output")}, details
    assert "never-built.png" in details and "empty data: URI" in details
    assert "nowhere.html" in details and "#no-such-section" in details
    assert "ZeroDivisionError" in details
    assert "make book" in str(caught.value)  # the message says what to do
    # Screenshots are taken before judging, so a failing build still shows what went wrong.
    for name in ("intro", "good", "broken", "crashed"):
        with Image.open(tmp_path / "shots" / f"{name}.png") as image:
            assert image.size == (1280, 2000)


def test_a_clean_site_passes(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "dot.png").write_bytes(_png())
    (tmp_path / "index.html").write_text(
        '<html><body><h1 id="top">Home</h1><img src="img/dot.png"><a href="sub/">sub</a>'
        '<a href="#top">up</a><a href="https://example.org/x.html">away</a></body></html>')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text('<html><body><a href="../index.html#top">home</a></body></html>')
    assert check_pages(tmp_path, tmp_path / "shots") == [tmp_path / "shots" / "index.png"]


def test_pdf_has_every_chapter_in_order_with_figures(tiny_book, tmp_path):
    import pypdf  # a test dependency (pyproject: test extra)

    pdf = make_pdf(tiny_book, tmp_path / "book.pdf")
    reader = pypdf.PdfReader(pdf)
    assert len(reader.pages) >= 4  # each chapter starts on a new sheet
    text = "\n".join(page.extract_text() for page in reader.pages)
    positions = [text.find(title) for title in ("Tiny book", "Good page", "Broken page", "Crashed chapter")]
    assert -1 not in positions and positions == sorted(positions), text[:500]
    images = [name for page in reader.pages
              for name, obj in (page["/Resources"].get("/XObject") or {}).items()
              if obj.get_object()["/Subtype"] == "/Image"]
    assert images, "no image XObject: the figures did not make it into the PDF"
    assert not (tiny_book / "_qdgs_print.html").exists()  # the build folder is left as it was
