"""notebooks/07_dashboard.ipynb in chromium, in JupyterLab and as a Voila app, trading on a `pxkit sim` process: a
bracket placed by clicking in the ticket, a ladder click that stages a limit order, a cancel from the blotter and
flatten-all, each checked in the page, at the simulator and in the kernel's suite."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from browser.chromium import CANDLE_PIXELS, Notebook
from browser.gateway import Gateway
from browser.lab_server import LabServer
from browser.voila_server import VoilaServer

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = "07_dashboard.ipynb"
SYMBOLS = ("MNQ", "ES", "MGC")
TICKET = ".pxkit-ticket[data-symbol=MNQ]"
LADDER = ".pxkit-ladder[data-symbol=MNQ]"
BLOTTER = ".pxkit-blotter"
# The instrument shown (the selector's Stack renders only its selected page) and the suite-wide widgets, painted.
RENDERED = """symbol => {
  const ready = s => document.querySelector(s)?.dataset.ready === '1';
  return Number(document.querySelector(`.pxkit-chart[data-symbol=${symbol}]`)?.dataset.bars) > 0
    && ready(`.pxkit-ladder[data-symbol=${symbol}]`) && ready(`.pxkit-ticket[data-symbol=${symbol}]`)
    && document.querySelector(`.pxkit-ladder[data-symbol=${symbol}] [data-price]`) !== null
    && ready('.pxkit-blotter') && ready('.pxkit-correlation') && ready('.pxkit-health'); }"""
SUITE_STATE = """import json
mnq = suite["MNQ"]
legs = sorted(mnq.orders.is_bracket_leg(o.id) for o in mnq.orders.working())
print(json.dumps({"size": mnq.positions.size,
                  "working": len(mnq.orders.working()), "legs": legs,
                  "flat": all(c.positions.size == 0 and not c.orders.working() for c in suite.contexts.values())}))"""

# A cell that keeps the kernel busy for 20 s (awaiting, as a long download or a backtest on a thread does), started
# without waiting for it; BUSY_CELL_RUNS: whether it still runs.
BUSY_CELL = """() => { const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  window.pxkitBusyEnded = false;
  const cell = kernel.requestExecute({code: 'import asyncio\\nawait asyncio.sleep(20)'});
  cell.done.then(() => { window.pxkitBusyEnded = true; }); }"""
BUSY_CELL_RUNS = "() => window.pxkitBusyEnded === false"
HANDLERS = """import json
print(json.dumps(suite.event_bus.handler_count() + sum(
    c.event_bus.handler_count() + len(c.positions._fill_listeners) + len(c.orders._observers)
    for c in suite.contexts.values())))"""

KERNEL_ID = "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"

Python = Callable[[], dict[str, Any]]  # the state of the kernel's suite


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    sim = Gateway(tmp_path_factory.mktemp("gateway"))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def dashboard_lab(chromium_ready, gateway, tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard-root")
    shutil.copy(NOTEBOOKS / NOTEBOOK, root / NOTEBOOK)
    server = LabServer(root, tmp_path_factory.mktemp("dashboard-home"), env=gateway.env)
    try:
        yield server
    finally:
        server.stop()


def test_the_dashboard_in_jupyterlab(dashboard_lab, gateway, guarded, artifacts) -> None:
    page, guard = guarded
    book = Notebook(page, dashboard_lab.url, NOTEBOOK)
    book.run_all()
    trade_through_the_dashboard(page, gateway, lambda: book.value(SUITE_STATE), artifacts / "dashboard_lab",
                                busy=lambda: page.evaluate(BUSY_CELL) or (lambda: page.evaluate(BUSY_CELL_RUNS)))

    # A re-run of the dashboard cell: a new dashboard, the old one closed (as many handlers as before).
    handlers = book.value(HANDLERS)
    page.evaluate("() => document.querySelectorAll('[data-ready]').forEach(e => { e.dataset.old = '1'; })")
    count = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[4].model.executionCount")
    book.run_cell(4)
    book.wait_executed(4, count + 1)
    page.wait_for_function(RENDERED, arg="MNQ")
    assert page.locator("[data-old]").count() == 0
    assert book.value(HANDLERS) == handlers

    # A reload of the page: the saved notebook's views come back from the running kernel, whole.
    book.command("docmanager:save")
    page.reload()
    Notebook.wait_kernel(page)
    page.wait_for_function(RENDERED, arg="MNQ")
    page.wait_for_selector(f'{BLOTTER} tr[data-fill-id]')  # the fills so far, though no new event came
    shot(page, artifacts / "dashboard_lab", "reloaded")
    assert guard.blocked == []
    assert guard.errors == []


def test_the_dashboard_as_a_voila_app(chromium_ready, gateway, guarded, artifacts, tmp_path) -> None:
    page, guard = guarded
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in (NOTEBOOK, "voila.json"):  # voila.json picks pxkit's template, as it does for a user
        shutil.copy(NOTEBOOKS / name, folder / name)
    home = tmp_path / "home"
    home.mkdir()
    server = VoilaServer(folder / NOTEBOOK, home, env=gateway.env)
    try:
        page.set_default_timeout(90_000)
        page.goto(server.url)
        kernel = page.evaluate(KERNEL_ID)
        trade_through_the_dashboard(page, gateway, lambda: server.value(kernel, SUITE_STATE),
                                    artifacts / "dashboard_voila", busy=None)
    finally:
        server.stop()
    assert guard.blocked == []  # no Font Awesome from a CDN: the template leaves it out
    assert guard.errors == []


def trade_through_the_dashboard(page: Any, gateway: Gateway, python: Python, shots: Path,
                                busy: Callable[[], Callable[[], bool]] | None) -> None:
    """The scenario both front ends run; a screenshot after each step goes to `shots`-<step>.png. `busy`, where the
    test can run a cell, starts a long one just before flatten-all is pressed and gives what tells if it still runs."""
    page.wait_for_function(RENDERED, arg="MNQ")
    heatmap = page.locator(".pxkit-correlation")
    page.wait_for_selector('.pxkit-correlation[data-values^="["]')  # after "computing...", the matrix
    assert heatmap.get_attribute("data-symbols") == ",".join(SYMBOLS)
    values = json.loads(heatmap.get_attribute("data-values"))
    assert [row[i] for i, row in enumerate(values)] == [1.0] * len(SYMBOLS), values
    assert page.locator(".pxkit-health").get_attribute("data-health") == "ok"
    # The candles in their colours: the chart reads them from CSS once it is in the page, not while the layout
    # builds it detached.
    page.wait_for_function(f"""() => ({CANDLE_PIXELS})([document.querySelector('.pxkit-chart[data-symbol=MNQ]')])
                                     .every(c => c.up > 300 && c.down > 300)""", timeout=30_000)
    shot(page, shots, "rendered")

    # A bracket by clicking: buy 1 MNQ at market, stop 20 ticks, target 40 ticks; Review, then a double click on Send.
    ticket = page.locator(TICKET)
    ticket.locator("button[data-side=buy]").click()
    ticket.locator("select[data-field=type]").select_option("market")
    ticket.locator("input[data-field=size]").fill("1")
    ticket.locator("input[data-field=stop]").fill("20")
    ticket.locator("input[data-field=target]").fill("40")
    ticket.locator("button[data-action=review]").click()
    page.wait_for_selector(f"{TICKET}[data-stage=confirm]")
    assert "$" in ticket.locator("[data-role=confirm]").inner_text()  # the risk in dollars
    ticket.locator("button[data-action=send]").dblclick()
    page.wait_for_selector(f"{TICKET}[data-order-id]:is([data-stage=working],[data-stage=done])")

    blotter = page.locator(BLOTTER)
    page.wait_for_selector(f'{BLOTTER} tr[data-position=MNQ][data-size="1"]')
    page.wait_for_function(f"""() => [...document.querySelectorAll('{BLOTTER} tr[data-order-id][data-symbol=MNQ]')]
                                     .map(r => r.dataset.leg).sort().join() === 'stop,target'""")
    at_sim = gateway.until(lambda: len(gateway.positions()) == 1 and len(gateway.orders()) == 2
                           and (gateway.positions(), gateway.orders()))
    assert [p["size"] for p in at_sim[0]] == [1]  # one contract, not two: the double click sent once
    state = python()
    assert (state["size"], state["working"], state["legs"]) == (1, 2, [True, True]), state
    shot(page, shots, "bracket")

    # A ladder click stages a buy limit at the lowest price shown; sent, it rests; cancelled from the blotter.
    bottom = page.locator(f"{LADDER} [data-price]").last
    price = float(bottom.get_attribute("data-price"))
    bottom.click()
    page.wait_for_function(f"""() => {{ const t = document.querySelector('{TICKET}');
      return t.dataset.stage === 'edit' && t.querySelector('select[data-field=type]').value === 'limit'
        && Number(t.querySelector('input[data-field=price]').value) === {price}; }}""")
    ticket.locator("input[data-field=stop]").fill("")
    ticket.locator("input[data-field=target]").fill("")
    ticket.locator("button[data-action=review]").click()
    page.wait_for_selector(f"{TICKET}[data-stage=confirm]")
    ticket.locator("button[data-action=send]").click()
    page.wait_for_selector(f"{TICKET}[data-stage=working][data-order-id]")
    limit_id = ticket.get_attribute("data-order-id")
    row = blotter.locator(f'tr[data-order-id="{limit_id}"]')
    row.wait_for()
    gateway.until(lambda: any(str(o["id"]) == limit_id and o["limitPrice"] == price for o in gateway.orders()))
    shot(page, shots, "staged")
    row.locator("button[data-action=cancel]").click()
    row.wait_for(state="detached")
    gateway.until(lambda: all(str(o["id"]) != limit_id for o in gateway.orders()))

    # Flatten-all (while another cell is busy): nothing working, nothing held, at the simulator, in the blotter and
    # in the kernel.
    still_busy = busy() if busy is not None else None
    blotter.locator("button[data-action=flatten]").click()
    gateway.until(lambda: gateway.positions() == [] and gateway.orders() == [], timeout=10)
    assert still_busy is None or still_busy()  # done while the other cell runs, not after it
    page.wait_for_function(f"""() => !document.querySelector('{BLOTTER} tr[data-position], {BLOTTER} tr[data-order-id]')
                                     && document.querySelector('{BLOTTER}').dataset.busy !== '1'""")
    assert python()["flat"] is True
    shot(page, shots, "flat")

    # The selector shows another instrument's chart, ladder and ticket, switched on the page.
    page.locator(".pxkit-selector button", has_text="ES").click()
    page.wait_for_function(RENDERED, arg="ES")
    assert page.locator(f"{TICKET}").is_hidden()
    shot(page, shots, "es")


def shot(page: Any, shots: Path, step: str) -> None:
    shots.parent.mkdir(exist_ok=True)
    page.screenshot(path=f"{shots}-{step}.png", full_page=True)

