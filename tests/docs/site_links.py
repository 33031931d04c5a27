"""Broken internal links of a built HTML site: links to missing files and to missing anchors.

Sphinx's ``linkcheck`` builder checks external URLs (it needs the network); this checks what the
site links to inside itself: every ``href``/``src`` that is not an absolute URL must name a file of
the site, and every ``#fragment`` an element ``id`` (or ``<a name>``) on the target page.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "a.html").write_text('<a href="b.html#x">ok</a> <a href="b.html#nope">bad</a> <img src="c.png">')
>>> _ = (root / "b.html").write_text('<h1 id="x">x</h1>')
>>> [(b.page, b.target, b.reason) for b in broken_links(root)]
[('a.html', 'b.html#nope', 'no id="nope"'), ('a.html', 'c.png', 'no such file')]
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: (tag, attribute) pairs that point at another resource.
LINK_ATTRS = {("a", "href"), ("link", "href"), ("img", "src"), ("script", "src"), ("iframe", "src")}


@dataclass(frozen=True)
class BrokenLink:
    page: str    # the page holding the link, relative to the site root
    target: str  # the link as written
    reason: str


class _Page(HTMLParser):
    """One pass over a page: the anchors it defines and the links it holds."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.links: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        for attr, value in attrs:
            if value is None:
                continue
            if attr == "id" or (tag == "a" and attr == "name"):
                self.anchors.add(value)
            elif (tag, attr) in LINK_ATTRS:
                self.links.append(value)


def broken_links(root: Path) -> list[BrokenLink]:
    """Every internal link of the ``*.html`` pages under ``root`` whose file or anchor is missing."""
    root = Path(root).resolve()
    pages = {page: _Page(page.read_text(encoding="utf-8")) for page in sorted(root.rglob("*.html"))}
    broken = []
    for page, parsed in pages.items():
        name = page.relative_to(root).as_posix()
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                continue  # external (http:, mailto:, data:): not this site's business, and no network here
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or not target.is_relative_to(root):
                broken.append(BrokenLink(name, link, "no such file"))
            elif parts.fragment and target in pages and unquote(parts.fragment) not in pages[target].anchors:
                broken.append(BrokenLink(name, link, f'no id="{unquote(parts.fragment)}"'))
    return broken
