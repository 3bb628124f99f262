"""MathJax written into each feedback page, so that its equations render offline.

nbgrader's feedback template loads MathJax 2 from a CDN: offline (exam rooms, restricted
networks, a file opened from an e-mail on a train) the equations stay raw LaTeX. The course's
feedback template (``templates/offline_feedback``) replaces that macro with :func:`offline_mathjax`:
two inline scripts, the configuration and MathJax 3's ``tex-svg.js`` followed by its ``ui/safe``
extension, both shipped with this package (``templates/offline_feedback/mathjax/``). SVG output
carries its own glyphs, so the page needs no font or other file: it is one self-contained file
(about 2.1 MB more per page).

Students write TeX too (written answers), so MathJax may do no more than typeset it:

- TeX packages ``base``, ``ams``, ``newcommand`` and ``noundefined`` only: no ``require``
  or ``autoload`` (they fetch code), no ``html`` (``\\href``, ``\\style``, ``\\class``), no
  ``unicode``, ``bbox`` or ``color``;
- ``ui/safe`` filters what is left (``\\mmlToken`` attributes: only http/https links, no styles);
  it runs in the same script as MathJax, before MathJax builds its document handler (a later
  script would come after it);
- no contextual menu (it would load more code on demand).

The two scripts are the same on every page: the last check of each feedback page
(:func:`autograder.feedback.unsafe_html`) allows exactly them and nothing else.
"""

from __future__ import annotations

import functools

from markupsafe import Markup

from . import PACKAGE_DIR

TEMPLATE_DIR = PACKAGE_DIR / "templates"
TEMPLATE_NAME = "offline_feedback"
MATHJAX_DIR = TEMPLATE_DIR / TEMPLATE_NAME / "mathjax"
MATHJAX_FILES = ("tex-svg.js", "safe.js")  # run in this order, as one script

CONFIG = """window.MathJax = {
  loader: {load: []},
  tex: {
    packages: ["base", "ams", "newcommand", "noundefined"],
    inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
    displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
    processEscapes: true,
    processEnvironments: true
  },
  options: {enableMenu: false},
  svg: {fontCache: "global"}
};"""


@functools.lru_cache(maxsize=1)
def mathjax_source() -> str:
    """MathJax and its ``ui/safe`` extension, as the content of one inline script."""
    parts = []
    for name in MATHJAX_FILES:
        path = MATHJAX_DIR / name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FileNotFoundError(f"{path} is missing ({exc}): the feedback pages need it to show equations. "
                                    "Fix: reinstall the course package (pip install -e .)") from exc
        if "</script" in text.lower():
            raise ValueError(f"{path} contains '</script', which would end its inline script early")
        parts.append(text.strip())
    return ";\n".join(parts)


def offline_mathjax() -> Markup:
    """The feedback template's ``mathjax()`` macro: configuration, then MathJax with ``ui/safe``."""
    return Markup(f'<script type="text/javascript">\n{CONFIG}\n</script>\n'
                  f'<script type="text/javascript">\n{mathjax_source()}\n</script>')
