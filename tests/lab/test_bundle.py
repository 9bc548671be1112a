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


def test_the_bundles_name_no_address_they_could_load_from() -> None:
    """Only an SVG namespace, the licence's address and the chart library's attribution link (a link the user may
    click, never fetched) appear: no CDN, no web font, no dynamic import from elsewhere."""
    allowed = ("http://www.w3.org/2000/svg", "https://www.apache.org/licenses/", "https://www.tradingview.com/?")
    for path in widget.STATIC.glob("*.[jc]s*"):
        addresses = re.findall(r"https?://[^\s\"'`)]+", path.read_text())
        assert all(a.startswith(allowed) for a in addresses), (path.name, addresses)
