"""Self-contained HTML pages: tables and PNG figures embedded as data URIs, so a page opens with no server.

Used by ``vaekit plot`` (one page per run) and by the reports of ``vaekit reproduce`` / ``vaekit sweep``
(``report.html`` beside ``report.md``: its markdown tables as HTML tables, then every figure).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write_bytes

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}img{max-width:100%;border:1px solid #eee}code{background:#f5f5f5;padding:0 3px}"""
#: after loading, the page records how many of its images decoded (checked by the headless-browser test)
CHECK_SCRIPT = """<script>window.addEventListener('load',function(){var i=document.images,n=0;
for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}
document.body.setAttribute('data-images-loaded',n);document.body.setAttribute('data-images',i.length);});</script>"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def table_html(rows: Sequence[tuple[Any, Any]], header: Sequence[str] = ("", "")) -> str:
    """A two-column key/value table."""
    body = "".join(f"<tr><th>{_cell(k)}</th><td>{_cell(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def image_tag(path: Path, alt: str | None = None) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt or Path(path).stem)}" src="data:image/png;base64,{data}">'


def html_page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    parts = [f"<h2>{html.escape(name)}</h2>\n{content}" for name, content in sections]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(parts)
            + f"\n{CHECK_SCRIPT}</body></html>\n")


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def markdown_to_html(markdown: str) -> str:
    """The subset of markdown that reports use: headings, pipe tables, bullet lists, paragraphs, **bold**,
    `code`."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            rows = [r for r in block if not all(re.fullmatch(r":?-{2,}:?|-+", c) for c in r)]
            head, body = rows[0], rows[1:]
            out.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</table>")
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)", line)
        if heading:
            level = len(heading.group(1)) + 1
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.startswith("- "):
            out.append(f"<ul><li>{_inline(line[2:])}</li></ul>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out)


def write_report_html(out: Path, title: str, markdown: str, files: Sequence[str | Path]) -> Path:
    """``out/report.html``: the report's markdown as HTML, then every PNG among ``files``."""
    figures = [Path(f) for f in files if str(f).endswith(".png") and Path(f).is_file()]
    sections = [("Report", markdown_to_html(markdown))] + [(f.stem, image_tag(f)) for f in figures]
    page = html_page(title, sections)
    path = Path(out) / "report.html"
    atomic_write_bytes(path, lambda f: f.write(page.encode()))
    return path
