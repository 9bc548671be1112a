"""Debian's chromium through Playwright, kept on loopback, and a JupyterLab notebook driven through its own app.

Nothing is ever downloaded: chromium is /usr/bin/chromium; every request to a host other than 127.0.0.1 or
localhost is aborted and recorded in `Guard.blocked`; console errors and page errors go to `Guard.errors`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# JS: for chart roots, the pixels in the candle colours (--pxkit-up #26a69a, --pxkit-down #ef5350) on their canvases.
CANDLE_PIXELS = """roots => roots.map(root => {
  let up = 0, down = 0;
  for (const canvas of root.querySelectorAll('canvas')) {
    if (!canvas.width || !canvas.height) continue;
    const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < px.length; i += 4) {
      const [r, g, b, a] = [px[i], px[i + 1], px[i + 2], px[i + 3]];
      if (a < 250) continue;
      if (Math.abs(r - 38) < 6 && Math.abs(g - 166) < 6 && Math.abs(b - 154) < 6) up++;
      else if (Math.abs(r - 239) < 6 && Math.abs(g - 83) < 6 && Math.abs(b - 80) < 6) down++;
    }
  }
  return {symbol: root.dataset.symbol, up, down};
})"""
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def missing_chromium() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium fonts-dejavu-core)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


def launch(playwright: Any) -> Any:
    """Chromium from the system, never a downloaded one."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)


class Guard:
    """Aborts and records every non-loopback request of a browser context; records the console errors of the pages
    it watches."""

    def __init__(self, context: Any) -> None:
        self.blocked: list[str] = []
        self.errors: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def watch(self, page: Any) -> None:
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook of code cells, for the python3 kernel."""
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(nbformat.writes(book))
    return path


class Notebook:
    """A notebook open in JupyterLab (`window.jupyterapp`, lab started with expose_app_in_browser)."""

    def __init__(self, page: Any, base_url: str, name: str, *, timeout: float = 90.0) -> None:
        self.page = page
        page.set_default_timeout(timeout * 1000)
        page.goto(f"{base_url}/lab/tree/{name}?reset")  # ?reset: no workspace restored from an earlier run
        self.wait_kernel(page)

    @staticmethod
    def wait_kernel(page: Any) -> None:
        """Until the notebook shown is connected to its kernel and the kernel is idle (after opening or a reload)."""
        page.wait_for_function(
            """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                       const kernel = w && w.sessionContext && w.sessionContext.session
                                      && w.sessionContext.session.kernel;
                       return kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle'; }""")

    def command(self, name: str) -> None:
        self.page.evaluate("name => window.jupyterapp.commands.execute(name)", name)

    def run_all(self) -> None:
        self.command("notebook:run-all-cells")

    def run_cell(self, index: int) -> None:
        """Select cell `index` and run it, as the user does with Ctrl+Enter."""
        self.page.evaluate("i => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = i; }", index)
        self.command("notebook:run-cell")

    def wait_executed(self, index: int, count: int) -> None:
        """Until cell `index` has finished its execution number `count` or a later one."""
        self.page.wait_for_function(
            "([i, n]) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.executionCount >= n",
            arg=[index, count])

    def output_text(self, index: int) -> str:
        return self.page.evaluate(
            "i => window.jupyterapp.shell.currentWidget.content.widgets[i].outputArea.node.innerText", index)

    def execute(self, code: str) -> str:
        """Run `code` on the notebook's kernel (not as a cell) and return what it printed; a failure raises."""
        said = self.page.evaluate(
            """async code => {
                 const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                 const future = kernel.requestExecute({code, silent: false, store_history: false});
                 const out = [];
                 future.onIOPub = msg => {
                   const t = msg.header.msg_type;
                   if (t === 'stream') out.push(msg.content.text);
                   if (t === 'error') out.push('ERROR ' + msg.content.ename + ': ' + msg.content.evalue);
                 };
                 await future.done;
                 return out.join(''); }""", code)
        if said.startswith("ERROR ") or "\nERROR " in said:
            raise AssertionError(f"kernel code failed: {said}")
        return said

    def value(self, code: str) -> Any:
        """The JSON printed last by `code` run on the kernel."""
        return json.loads(self.execute(code).strip().splitlines()[-1])


def in_ci() -> bool:
    return bool(os.environ.get("CI"))
