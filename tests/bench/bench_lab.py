"""Benchmark: live charts in JupyterLab and Debian chromium, fed by a simulator in its own process.

Prints, with external requests blocked:
- the time from run-all to 20,000 one-minute bars painted, cold (the suite starts and loads its history) and warm
  (the suite cell reuses the running suite, the chart cell makes a new chart);
- for rising simulator trade rates on MNQ, ES and MGC (one chart each, 10 Hz throttle): the trades per second the
  suite routes into the charts, the deltas per second each chart paints, the lag from a trade reaching the chart
  to its candle painted (p50/p99 of el.pxkitLags) and how long a trivial cell waits meanwhile from the page
  sending it to the kernel starting it (p50/max; goal: within 50 ms, the kernel stays responsive), with its whole
  round trip through JupyterLab's websocket beside it; and, from the kernel, how long a change waits for its delta
  (the throttle) and how long building and sending a delta takes;
- the dashboard (`lab.dashboard`, three instruments, the simulator's default trade rate) at steady state: the
  kernel's share of one core, and the click-to-acknowledged latency of orders sent from its ticket (the Send click
  to the order's id shown in the ticket, p50/max).
`--short` runs two rates for a few seconds each. Needs /usr/bin/chromium.

    python tests/bench/bench_lab.py [--short]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the browser harness

from browser.chromium import Guard, Notebook, launch, missing_chromium, write_notebook
from browser.lab_server import SRC, LabServer

START = "2026-03-02T14:30:00Z"  # a Monday at the US cash open
SYMBOLS = ["MNQ", "ES", "MGC"]
BIG = 20_000
SETUP = """from pxkit import lab, ProjectXConfig
URL = {url!r}
import json, time
from pxkit.lab.charting import Chart
FLUSHES = []  # per delta sent: ms from its first change to the flush, ms the flush took (bench instrumentation)
if not hasattr(Chart, "_untimed_flush"):
    Chart._untimed_flush = Chart._flush
    def _timed_flush(self):
        origin, start = self._origin_ms, time.time() * 1000
        sent = self._untimed_flush()  # the throttle waits its interval only after a flush that sent
        if sent:
            FLUSHES.append((start - origin, time.time() * 1000 - start))
        return sent
    Chart._flush = _timed_flush"""
BIG_CELLS = [
    'suite = await lab.suite("MNQ", config=ProjectXConfig.for_simulator(URL), timeframes=["1min"], '
    'max_bars=45_000, initial_days=30)',  # 30 calendar days hold about 20 trading days of 23 open hours
    f'lab.chart(suite["MNQ"], timeframe="1min", bars={BIG})',
]
LIVE_CELLS = [
    f'suite = await lab.suite({SYMBOLS!r}, config=ProjectXConfig.for_simulator(URL), timeframes=["1min"])',
    *(f'lab.chart(suite["{s}"], timeframe="1min")' for s in SYMBOLS),
]
DASHBOARD_CELLS = [
    f'suite = await lab.suite({SYMBOLS!r}, config=ProjectXConfig.for_simulator(URL), timeframes=["1min", "5min"], '
    'features=["orderbook"])',
    "board = lab.dashboard(suite)\nboard",
]
# The instrument shown (the selector's Stack renders only its page): ladder and ticket, and the suite-wide widgets.
DASHBOARD_READY = """() => [...document.querySelectorAll(
  '.pxkit-ladder, .pxkit-ticket, .pxkit-blotter, .pxkit-correlation, .pxkit-health')]
  .filter(e => e.dataset.ready === '1').length === 5"""
PID = "import os; print(os.getpid())"
TICKET = ".pxkit-ticket[data-symbol=MNQ]"
CANCEL_ALL = 'n = await suite["MNQ"].orders.cancel_all_orders(); print(n)'
# One order from the ticket: a buy limit 40 ticks under the market (it rests), reviewed, then the Send click timed
# until the ticket shows the order's id (the gateway acknowledged it).
TIMED_SEND = """async ticket => {
  const root = document.querySelector(ticket);
  const set = (field, value) => { const e = root.querySelector(`[data-field=${field}]`); e.value = value;
    e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); };
  const stage = wanted => new Promise(done => { const seen = () => wanted(root) && (observer.disconnect(), done());
    const observer = new MutationObserver(seen); observer.observe(root, {attributes: true, subtree: true}); seen(); });
  if (root.dataset.stage !== 'edit') root.querySelector('button[data-action=back]').click();  // "New order"
  await stage(r => r.dataset.stage === 'edit');
  root.querySelector('button[data-side=buy]').click();
  set('type', 'limit');
  const last = Number(document.querySelector('.pxkit-ladder[data-symbol=MNQ]').dataset.last);
  set('price', String(last - 10)); set('size', '1'); set('stop', ''); set('target', '');
  root.querySelector('button[data-action=review]').click();
  await stage(r => r.dataset.stage === 'confirm');
  const previous = root.dataset.orderId;
  const begin = performance.now();
  root.querySelector('button[data-action=send]').click();
  await stage(r => r.dataset.orderId && r.dataset.orderId !== previous);
  return performance.now() - begin; }"""
TRADES = "print(json.dumps(sum(c.data.stats.counters['trades'] for c in suite.contexts.values())))"
FLUSH_TIMES = "print(json.dumps(FLUSHES)); FLUSHES.clear()"
CHARTS = "[...document.querySelectorAll('.pxkit-chart')]"
NEW_ROOT = f"() => {CHARTS}.some(r => !r.dataset.old)"
NEW_BIG = f"() => {CHARTS}.some(r => !r.dataset.old && Number(r.dataset.bars) >= {BIG})"
LIVE = f"n => {{ const r = {CHARTS}; return r.length === n && r.every(c => Number(c.dataset.seq) > 0); }}"
SEQS = f"() => {CHARTS}.map(r => Number(r.dataset.seq))"
RESET_LAGS = f"() => {CHARTS}.forEach(r => {{ r.pxkitLags.length = 0; }})"
LAGS = f"() => {CHARTS}.flatMap(r => r.pxkitLags)"
PROBE = """async ([n, gap]) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const trips = [], waits = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const future = kernel.requestExecute({code: '1 + 1', silent: false, store_history: false});
    let started = NaN;
    future.onReply = reply => { started = Date.parse(reply.metadata.started); };
    await future.done;
    trips.push(performance.now() - t);
    waits.push(started - Date.parse(future.msg.header.date));  // sent by the page -> started by the kernel
    await new Promise(next => setTimeout(next, gap));  // pacing between probes
  }
  return {trips, waits}; }"""


@contextlib.contextmanager
def simulator(trades_per_minute: float) -> Iterator[str]:
    """`pxkit sim` in its own process (the kernel only routes and charts); yields its URL, ends it by pid."""
    code = "import sys; from pxkit.cli import main; sys.exit(main())"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-c", code, "sim", "--start", START,
                                "--trades-per-minute", str(trades_per_minute)],
                               stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()  # "pxkit sim ready at http://127.0.0.1:PORT (...)"
        if "ready at" not in line:
            raise RuntimeError(f"pxkit sim did not start: {line!r}")
        yield line.split("ready at ")[1].split()[0]
    finally:
        process.terminate()
        process.wait(10)


def cuts(values: list[float]) -> tuple[float, float]:
    """p50 and p99."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98]


def open_book(page, lab: LabServer, name: str, url: str, cells: list[str]) -> Notebook:
    write_notebook(lab.root / name, [SETUP.format(url=url), *cells])
    return Notebook(page, lab.url, name, timeout=180)


def big_chart(page, lab: LabServer) -> None:
    """Run-all to 20,000 bars painted: cold, then warm (the suite reused, a new chart)."""
    frames: list[tuple[float, int]] = []  # (when, size) of each websocket frame the page receives
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append((time.perf_counter(),
                                                                                        len(data)))))
    with simulator(240) as url:
        book = open_book(page, lab, "big.ipynb", url, BIG_CELLS)
        begin = time.perf_counter()
        book.run_all()
        page.wait_for_function(NEW_BIG)
        cold = time.perf_counter() - begin
        page.evaluate(f"() => {CHARTS}.forEach(r => {{ r.dataset.old = '1'; }})")
        begin = time.perf_counter()
        book.run_all()
        page.wait_for_function(NEW_ROOT)
        shown = time.perf_counter() - begin
        page.wait_for_function(NEW_BIG)
        warm = time.perf_counter() - begin
        state = min((t for t, size in frames if t > begin and size > BIG * 8 * 6), default=float("nan")) - begin
        print(f"run-all -> {BIG:,} bars painted: {warm:.2f} s with the suite running (goal < 1 s; the chart's "
              f"element on the page after {shown:.2f} s, its state received after {state:.2f} s); "
              f"{cold:.2f} s cold (suite start, history load)")
        lab.shutdown_kernels()


def live_charts(page, lab: LabServer, rates: list[float], window: float) -> None:
    """At each trade rate: trades routed into the charts, deltas painted, paint lag and cell latency."""
    print("wait: a cell's, from the page sending it to the kernel starting it (trip: its whole round trip); "
          "held: a change in the kernel before its delta is sent; flush: the kernel's work per delta")
    print(f"{'offered/s':>10} {'routed/s':>9} {'deltas/s/chart':>15} {'lag p50':>8} {'lag p99':>8} "
          f"{'wait p50':>10} {'wait max':>10} {'trip p50':>9} {'held p50':>9} {'flush p50':>9}")
    for rate in rates:
        with simulator(rate) as url:
            book = open_book(page, lab, "live.ipynb", url, LIVE_CELLS)
            if rate == rates[0]:
                idle = page.evaluate(PROBE, [20, 50])
                print(f"{'idle kernel':>10} {'':>9} {'':>15} {'':>8} {'':>8} {cuts(idle['waits'])[0]:>8.1f}ms "
                      f"{max(idle['waits']):>8.1f}ms {cuts(idle['trips'])[0]:>7.1f}ms")
            book.run_all()
            page.wait_for_function(LIVE, arg=len(SYMBOLS))
            page.evaluate(RESET_LAGS)
            book.value(FLUSH_TIMES)
            seqs, trades, begin = page.evaluate(SEQS), book.value(TRADES), time.perf_counter()
            probes = page.evaluate(PROBE, [max(5, int(window / 0.2)), 150])
            seconds = time.perf_counter() - begin
            routed = (book.value(TRADES) - trades) / seconds
            deltas = [(b - a) / seconds for a, b in zip(seqs, page.evaluate(SEQS), strict=True)]
            lag50, lag99 = cuts(page.evaluate(LAGS))
            waits = probes["waits"]
            flushes = book.value(FLUSH_TIMES)
            held, spent = (cuts([f[i] for f in flushes])[0] for i in (0, 1))
            print(f"{rate * len(SYMBOLS) / 60:>10,.0f} {routed:>9,.0f} {statistics.mean(deltas):>15.1f} "
                  f"{lag50:>6.0f}ms {lag99:>6.0f}ms {cuts(waits)[0]:>8.1f}ms {max(waits):>8.1f}ms "
                  f"{cuts(probes['trips'])[0]:>7.1f}ms {held:>7.0f}ms {spent:>6.1f}ms")
            lab.shutdown_kernels()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dashboard(page, lab: LabServer, window: float, orders: int) -> None:
    """The dashboard at the default trade rate: the kernel's CPU share, then orders timed from the ticket."""
    with simulator(60) as url:
        book = open_book(page, lab, "dashboard.ipynb", url, DASHBOARD_CELLS)
        book.run_all()
        page.wait_for_function(DASHBOARD_READY)
        pid = book.value(PID)
        page.wait_for_timeout(2000)  # past the start: history loaded, first heatmap drawn
        used, begin = cpu_seconds(pid), time.perf_counter()
        page.wait_for_timeout(window * 1000)  # the measured window: the dashboard runs on its own
        share = (cpu_seconds(pid) - used) / (time.perf_counter() - begin)
        print(f"dashboard, 3 instruments at 60 trades/min each: kernel CPU {share:.1%} of one core "
              f"over {window:.0f} s")
        acks = []
        for _ in range(orders):
            acks.append(page.evaluate(TIMED_SEND, TICKET))
            book.value(CANCEL_ALL)
        print(f"ticket click -> order acknowledged: p50 {statistics.median(acks):.0f} ms, "
              f"max {max(acks):.0f} ms over {orders} orders")
        lab.shutdown_kernels()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="two trade rates, a few seconds each")
    args = parser.parse_args()
    reason = missing_chromium()
    if reason is not None:
        print(f"bench_lab: {reason}", file=sys.stderr)
        return 1
    rates = [1_200, 60_000] if args.short else [1_200, 12_000, 60_000, 180_000, 360_000]  # per contract per minute
    window = 3.0 if args.short else 10.0
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        root, home = Path(tmp, "root"), Path(tmp, "home")
        root.mkdir()
        home.mkdir()
        lab = LabServer(root, home)
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1900})
            guard = Guard(context)
            page = context.new_page()
            guard.watch(page)
            big_chart(page, lab)
            live_charts(page, lab, rates, window)
            dashboard(page, lab, 5.0 if args.short else 30.0, 5 if args.short else 20)
            print(f"external requests blocked: {len(guard.blocked)}; console errors: {len(guard.errors)}")
            for error in guard.errors[:5]:
                print(f"  {error}")
        finally:
            browser.close()
            lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
