"""The committed widget bundles are built from the committed sources (widgets/): rebuild with `npm run build`."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pxkit.lab.widget as widget

ROOT = Path(__file__).resolve().parents[2]
WIDGETS = ROOT / "widgets"
BUILD_INPUTS = ("package.json", "package-lock.json", "build.mjs")


def digest(base: Path, paths: list[Path]) -> str:
    """The build script's digest: sha256 over (relative path, NUL, length, NUL, bytes), in sorted path order."""
    sha = hashlib.sha256()
    for rel in sorted(p.relative_to(base).as_posix() for p in paths):
        data = (base / rel).read_bytes()
        sha.update(f"{rel}\0{len(data)}\0".encode())
        sha.update(data)
    return sha.hexdigest()


def stamp() -> dict[str, str]:
    lines = (widget.STATIC / "STAMP").read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines)


def test_the_bundle_was_built_from_the_sources_as_they_are_now() -> None:
    sources = [p for p in (WIDGETS / "src").rglob("*") if p.is_file()] + [WIDGETS / n for n in BUILD_INPUTS]
    assert stamp()["sources"] == digest(WIDGETS, sources), \
        "widgets/ changed since the bundle was built: run `cd widgets && npm ci && npm run build` and commit"


def test_each_committed_bundle_is_the_one_that_build_wrote() -> None:
    outputs = {name: value for name, value in stamp().items() if name != "sources"}
    entries = {p.name for p in (WIDGETS / "src").iterdir() if p.suffix in (".js", ".css")}
    assert set(outputs) == entries
    for name, value in outputs.items():
        assert digest(widget.STATIC, [widget.STATIC / name]) == value, f"static/{name} was edited after the build"


# Addresses a bundle may name, none of them ever requested: each is a prefix of the whole address found.
INERT = (
    "http://www.w3.org/2000/svg", "http://www.w3.org/2000/xmlns/", "http://www.w3.org/1999/xlink",  # XML namespaces
    "https://www.apache.org/licenses/", "https://github.com/Starcounter-Jack/JSON-Patch",  # licence comments
    "https://www.tradingview.com/?",  # the chart library's attribution link: one the user may click
    "https://vega.github.io/schema/vega/v6.json",  # the $schema vega-lite writes into the Vega spec it compiles
    "https://vega.github.io/editor/",  # vega-embed's "open in editor" action: the heatmap embeds with actions off
    "https://github.com/vega/vega-lite/issues/2415",  # quoted in one of vega-lite's error messages
)


def test_the_bundles_name_no_address_they_could_load_from() -> None:
    """Only the INERT addresses appear: no CDN, no web font, no dynamic import from elsewhere."""
    for path in widget.STATIC.glob("*.[jc]s*"):
        addresses = re.findall(r"https?://[^\s\"'`)]+", path.read_text())
        assert all(a.startswith(INERT) for a in addresses), (path.name, addresses)


def test_the_heatmap_loads_nothing_at_runtime() -> None:
    """Vega's loader is the one way the heatmap bundle could fetch (data URLs, images): the view gets one that
    refuses every load, vega-embed's actions (the editor link) are off, and nothing else calls fetch or import()."""
    source = (widget.STATIC / "correlation.js").read_text()
    assert source.count("fetch(") == 1  # vega's default http loader, replaced by the view's
    assert "import(" not in source
    view = (WIDGETS / "src" / "correlation.js").read_text()
    assert "load: refuse, sanitize: refuse, http: refuse, file: refuse" in view
    assert "actions: false" in view and "loader: this.loader" in view
