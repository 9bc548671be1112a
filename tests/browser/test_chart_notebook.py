"""A notebook in JupyterLab and chromium: a three-instrument suite on the simulator and a live chart per instrument."""

from __future__ import annotations

import json

from browser.chromium import CANDLE_PIXELS, Notebook, write_notebook

SYMBOLS = ("MNQ", "ES", "MGC")
SUITE_CELL = """from pxkit import lab
suite = await lab.suite(["MNQ", "ES", "MGC"], timeframes=["1min"])
print(f"suite {id(suite)} on {', '.join(suite.contexts)}")"""
CHART_CELL = 'lab.chart(suite["{symbol}"], timeframe="1min", bars=500)'
BUY_CELL = """mnq = suite["MNQ"]
await (await mnq.orders.place_market_order("buy", 2)).wait_filled(timeout=10)
print("long", mnq.positions.size, "@", mnq.positions.average_price)"""
TASKS = "import asyncio, json\nprint(json.dumps(len(asyncio.all_tasks())))"

CHARTS = "() => [...document.querySelectorAll('.pxkit-chart')]"
DRAWN = f"""() => {{ const roots = ({CHARTS})();
  return roots.length === {len(SYMBOLS)} && roots.every(r => Number(r.dataset.bars) > 0); }}"""
SHOWN = f"""() => ({CHARTS})().map(r => ({{symbol: r.dataset.symbol, timeframe: r.dataset.timeframe,
  bars: Number(r.dataset.bars), seq: Number(r.dataset.seq), lastClose: r.dataset.lastClose,
  markers: Number(r.dataset.markers), avgPrice: r.dataset.avgPrice,
  lags: [...r.pxkitLags]}}))"""
def advanced(before: list[dict], key: str) -> str:
    """JS: true once every chart's `key` differs from what `before` recorded."""
    return f"""() => {{ const was = {json.dumps({c["symbol"]: c[key] for c in before})};
      return ({CHARTS})().every(r => String(r.dataset.{key}) !== String(was[r.dataset.symbol])); }}"""


def test_live_charts_of_a_suite_in_jupyterlab(lab, guarded, artifacts) -> None:
    page, guard = guarded
    cells = [SUITE_CELL, *(CHART_CELL.format(symbol=s) for s in SYMBOLS), BUY_CELL]
    write_notebook(lab.root / "charts.ipynb", cells)
    book = Notebook(page, lab.url, "charts.ipynb")
    book.run_all()

    page.wait_for_function(DRAWN)  # every chart got its state and painted it
    first = page.evaluate(SHOWN)
    assert [(c["symbol"], c["timeframe"]) for c in first] == [(s, "1min") for s in SYMBOLS]
    assert all(c["bars"] == 500 for c in first), first  # a day of history preloaded, the newest 500 shown
    # Rising and falling bodies on every chart's canvas (the library paints in its own animation frame).
    page.wait_for_function(f"() => ({CANDLE_PIXELS})(({CHARTS})()).every(c => c.up > 500 && c.down > 500)",
                           timeout=30_000)

    # Simulator trades reach each chart as deltas, painted within a second of reaching the chart.
    page.wait_for_function(advanced(first, "seq"), timeout=15_000)
    page.wait_for_function(advanced(first, "lastClose"), timeout=30_000)
    live = page.evaluate(SHOWN)
    for chart in live:
        assert chart["lags"] and max(chart["lags"]) < 1000, chart
        assert float(chart["lastClose"]) > 0

    # Re-running the suite cell returns the same suite: same object, no "closing" line, no new task.
    said = book.output_text(0)
    tasks = book.value(TASKS)
    count = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[0].model.executionCount")
    book.run_cell(0)
    book.wait_executed(0, count + 1)
    again = book.output_text(0)
    line = said.strip().splitlines()[-1]
    assert line.startswith("suite ") and "embedded simulator" in said, said
    assert again.strip().splitlines() == [line]  # the same id; no "closing", no second simulator
    assert book.value(TASKS) == tasks
    before = page.evaluate(SHOWN)
    page.wait_for_function(advanced(before, "seq"), timeout=15_000)  # the charts still follow the same suite

    # The user's fill: an arrow on MNQ's chart and a line at the position's average price; nothing on the others.
    bought = book.output_text(len(cells) - 1).split()
    assert bought[:2] == ["long", "2"], bought
    page.wait_for_function(f"""() => ({CHARTS})().some(r => r.dataset.symbol === "MNQ" && r.dataset.markers === "1"
      && Number(r.dataset.avgPrice) === {float(bought[-1])})""", timeout=10_000)
    assert [c["markers"] for c in page.evaluate(SHOWN)] == [1, 0, 0]

    page.screenshot(path=str(artifacts / "charts.png"), full_page=True)
    assert guard.blocked == []
    assert guard.errors == []
