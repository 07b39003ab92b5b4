"""Publishing the built book: check it in a real browser, print it to PDF, push it to GitHub Pages,
and refresh the README's results table (``python -m qdgs.publish --help``).

Modules, one job each:

- :mod:`~qdgs.publish.chromium`: headless chromium and a loopback server;
- :mod:`~qdgs.publish.site`: a build's pages, their reading order, where links point;
- :mod:`~qdgs.publish.browser`: the reader's-eye check (:func:`check_pages`);
- :mod:`~qdgs.publish.pdf`: the whole book as one PDF (:func:`make_pdf`);
- :mod:`~qdgs.publish.pages`: the gh-pages push (:func:`push_pages`);
- :mod:`~qdgs.publish.readme`: the README's results block (:func:`readme_results`, :func:`update_readme`);
- :mod:`~qdgs.publish.command`: the command line.
"""

from qdgs.publish.browser import BookCheckError, Problem, check_pages
from qdgs.publish.command import main
from qdgs.publish.pages import push_pages
from qdgs.publish.pdf import make_pdf
from qdgs.publish.readme import README_MARKERS, readme_results, update_readme
from qdgs.publish.site import all_pages, reading_order

__all__ = ["README_MARKERS", "BookCheckError", "Problem", "all_pages", "check_pages", "main", "make_pdf",
           "push_pages", "reading_order", "readme_results", "update_readme"]
