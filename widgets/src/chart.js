// pxkit live chart view: candles, volume, indicator lines, fill markers and the average-price line.
//
// Protocol (custom messages from Python; bar times in a float64 buffer, the other columns in one float32 buffer,
// column-major, `rows` values per column, NaN where a line has no value yet):
//   {kind: "state", seq, columns, series, rows, limit, markers, avg_price}  the whole chart, answer to our "hello"
//   {kind: "delta", seq, origin_ms, columns, rows, markers, avg_price}  the bars changed since the last message
// After each paint the root element says what is on screen: data-bars, data-last-close, data-seq, data-markers,
// data-avg-price, and `pxkitLags` (ms from a delta's first change reaching the kernel's chart to its paint).
// Every piece of state lives in one ChartView, made per render and scoped to its element: two charts (or two views
// of one chart) never share anything.
import {
  CandlestickSeries,
  HistogramSeries,
  LineSeries,
  LineStyle,
  createChart,
  createSeriesMarkers,
} from "lightweight-charts";

const MAX_LAGS = 1000; // paint lags kept on the root element (el.pxkitLags)
const MAX_MARKERS = 300; // fill markers drawn, the newest
const PALETTE = ["#2962ff", "#ff9800", "#ab47bc", "#26a69a", "#ec407a", "#8d6e63", "#7cb342", "#00acc1"];
const LINE_COLOURS = { bb_upper: "#9e9e9e", bb_lower: "#9e9e9e", bb_middle: "#757575", vwap: "#e040fb" };

function colour(root, name) {
  return getComputedStyle(root).getPropertyValue(name).trim();
}

function candleColours(root) {
  const up = colour(root, "--pxkit-up");
  const down = colour(root, "--pxkit-down");
  return { upColor: up, downColor: down, wickUpColor: up, wickDownColor: down };
}

function theme(root) {
  return {
    layout: {
      background: { color: colour(root, "--pxkit-bg") || "#ffffff" },
      textColor: colour(root, "--pxkit-text") || "#333333",
      fontFamily: colour(root, "--pxkit-font") || "sans-serif",
      attributionLogo: true,
    },
    grid: {
      vertLines: { color: colour(root, "--pxkit-grid") || "rgba(128,128,128,0.15)" },
      horzLines: { color: colour(root, "--pxkit-grid") || "rgba(128,128,128,0.15)" },
    },
    rightPriceScale: { borderColor: colour(root, "--pxkit-border") || "rgba(128,128,128,0.4)" },
    timeScale: { borderColor: colour(root, "--pxkit-border") || "rgba(128,128,128,0.4)" },
  };
}

// Bar times are UTC seconds; axis and crosshair read them in `zone` (the chart's `time_zone`, an IANA name).
function clock(zone) {
  const make = (options) => new Intl.DateTimeFormat(undefined, { timeZone: zone, hourCycle: "h23", ...options });
  const hm = make({ hour: "2-digit", minute: "2-digit" });
  const hms = make({ hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const day = make({ day: "numeric", month: "short" });
  const month = make({ month: "short", year: "numeric" });
  const year = make({ year: "numeric" });
  const full = make({ weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const at = (time) => new Date(time * 1000);
  return {
    crosshair: (time) => full.format(at(time)),
    tick: (time, type) => [year, month, day, hm, hms][type]?.format(at(time)) ?? null, // by TickMarkType, Year = 0
  };
}

function decimals(step) {
  const text = String(step);
  return text.includes(".") ? text.length - text.indexOf(".") - 1 : 0;
}

// A buffer (DataView or ArrayBuffer) as a typed array, copied only when its offset does not suit the type.
function typed(raw, Type) {
  const view = ArrayBuffer.isView(raw) ? raw : new DataView(raw);
  const size = Type.BYTES_PER_ELEMENT;
  return view.byteOffset % size === 0
    ? new Type(view.buffer, view.byteOffset, view.byteLength / size)
    : new Type(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

// The message's columns by name: times from the float64 buffer, the other columns from the float32 one.
function columnsOf(content, buffers) {
  const n = content.rows;
  const values = typed(buffers[1], Float32Array);
  const out = { time: typed(buffers[0], Float64Array) };
  content.columns.slice(1).forEach((name, i) => { out[name] = values.subarray(i * n, (i + 1) * n); });
  return out;
}

// Row indices in ascending time, each time once (the last row given for it wins).
function sortedRows(time) {
  const order = Array.from(time, (_, i) => i).sort((a, b) => time[a] - time[b] || a - b);
  const keep = [];
  for (const i of order) {
    if (keep.length && time[keep[keep.length - 1]] === time[i]) keep[keep.length - 1] = i;
    else keep.push(i);
  }
  return keep;
}

// First index whose time is >= t.
function lowerBound(times, t) {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class ChartView {
  constructor(model, el) {
    this.model = model;
    const root = (this.root = document.createElement("div"));
    root.className = "pxkit-chart";
    root.dataset.symbol = model.get("symbol");
    root.dataset.timeframe = model.get("timeframe");
    root.pxkitLags = [];
    this.legend = document.createElement("div");
    this.legend.className = "pxkit-chart-legend";
    root.appendChild(this.legend);
    el.appendChild(root);

    this.seq = -1; // last seq applied; -1 until the state arrives
    this.limit = Infinity; // bars kept, from the state
    this.times = [];
    this.candles = [];
    this.volume = [];
    this.lines = new Map(); // column -> {series, data}
    this.markers = new Map(); // fill id -> marker
    this.shownMarkers = 0;
    this.avgPrice = null;
    this.avgLine = null;
    this.origins = [];
    this.frame = 0;

    const step = model.get("tick_size") || 0.01;
    this.priceFormat = { type: "price", precision: decimals(step), minMove: step };
    const times = clock(model.get("time_zone"));
    this.chart = createChart(root, {
      autoSize: true,
      ...theme(root),
      localization: { timeFormatter: times.crosshair },
      timeScale: {
        ...theme(root).timeScale, timeVisible: true, secondsVisible: /sec$/.test(model.get("timeframe")),
        rightOffset: 4, // room for the newest bar's marker
        tickMarkFormatter: times.tick,
      },
    });
    this.candleSeries = this.chart.addSeries(CandlestickSeries, {
      ...candleColours(root), borderVisible: false, priceFormat: this.priceFormat,
    });
    this.volumeSeries = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "volume", priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.markerApi = createSeriesMarkers(this.candleSeries, []);

    this.themeWatch = new MutationObserver(() => this.recolour());
    this.themeWatch.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
    this.onMessage = (content, buffers) => this.receive(content, buffers);
    model.on("msg:custom", this.onMessage);
    model.send({ kind: "hello" });
  }

  // The colours come from CSS variables, which a view not yet in the document (a layout renders its children
  // before attaching them) does not have: read them again with each state, which arrives once the view is shown.
  recolour() {
    this.chart.applyOptions(theme(this.root));
    this.candleSeries.applyOptions(candleColours(this.root));
  }

  receive(content, buffers) {
    if (content.kind === "state") {
      this.recolour();
      this.applyState(content, buffers);
    } else if (content.kind === "delta") {
      if (this.seq < 0 || content.seq <= this.seq) return; // no state yet, or already in it
      if (content.seq !== this.seq + 1) { // a gap: ask for the whole state again
        this.model.send({ kind: "hello" });
        return;
      }
      this.applyDelta(content, buffers);
      this.origins.push(content.origin_ms);
    } else {
      return;
    }
    this.seq = content.seq;
    this.paintSoon();
  }

  // A price sent as float32, back on the tick grid with the contract's decimals (20180.25, 2809.4).
  tick(value) {
    const { minMove, precision } = this.priceFormat;
    return Number((Math.round(value / minMove) * minMove).toFixed(precision));
  }

  item(cols, i) {
    const time = cols.time[i];
    const open = this.tick(cols.open[i]);
    const close = this.tick(cols.close[i]);
    const bar = { time, open, high: this.tick(cols.high[i]), low: this.tick(cols.low[i]), close };
    const volume = { time, value: cols.volume[i], color: close >= open ? this.volumeUp : this.volumeDown };
    const lines = [];
    for (const name of this.lines.keys()) {
      const value = cols[name][i];
      lines.push(Number.isFinite(value) ? { time, value } : { time });
    }
    return { time, bar, volume, lines };
  }

  setLines(series) {
    const names = series.map((s) => s.name).join(",");
    if (names === [...this.lines.keys()].join(",")) return;
    for (const { series: line } of this.lines.values()) this.chart.removeSeries(line);
    this.lines.clear();
    const title = document.createElement("b");
    title.textContent = `${this.root.dataset.symbol} · ${this.root.dataset.timeframe}`;
    const zone = document.createElement("i");
    zone.textContent = this.model.get("time_zone");
    const legend = [title, zone];
    series.forEach(({ name, pane }, i) => {
      const color = LINE_COLOURS[name] || PALETTE[i % PALETTE.length];
      const line = this.chart.addSeries(LineSeries, {
        color, lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false,
        priceFormat: pane === 0 ? this.priceFormat : undefined,
        lineStyle: name.startsWith("bb_") && name !== "bb_middle" ? LineStyle.Dashed : LineStyle.Solid,
      }, pane);
      this.lines.set(name, { series: line, data: [] });
      const label = document.createElement("span");
      label.style.color = color;
      label.textContent = name;
      legend.push(label);
    });
    const panes = this.chart.panes();
    if (panes.length > 1) panes[1].setHeight(110);
    this.legend.replaceChildren(...legend);
  }

  applyState(content, buffers) {
    this.volumeUp = colour(this.root, "--pxkit-volume-up");
    this.volumeDown = colour(this.root, "--pxkit-volume-down");
    this.limit = content.limit;
    this.setLines(content.series);
    const follow = this.following();
    const cols = columnsOf(content, buffers);
    const rows = sortedRows(cols.time).slice(-this.limit);
    this.times = [];
    this.candles = [];
    this.volume = [];
    for (const entry of this.lines.values()) entry.data = [];
    for (const i of rows) this.push(this.item(cols, i));
    this.setAll();
    this.markers.clear();
    this.applyMarkers(content.markers, true);
    this.applyAverage(content.avg_price);
    if (follow) this.chart.timeScale().scrollToRealTime();
  }

  applyDelta(content, buffers) {
    const follow = this.following();
    const cols = columnsOf(content, buffers);
    let whole = false; // something changed before the last bar: set all data again
    const updates = [];
    for (const i of sortedRows(cols.time)) {
      const item = this.item(cols, i);
      const at = lowerBound(this.times, item.time);
      if (at === this.times.length) {
        this.push(item);
        updates.push(item);
      } else if (this.times[at] === item.time) {
        this.candles[at] = item.bar;
        this.volume[at] = item.volume;
        [...this.lines.values()].forEach((entry, k) => { entry.data[at] = item.lines[k]; });
        if (at === this.times.length - 1) updates.push(item);
        else whole = true;
      } else {
        this.times.splice(at, 0, item.time);
        this.candles.splice(at, 0, item.bar);
        this.volume.splice(at, 0, item.volume);
        [...this.lines.values()].forEach((entry, k) => entry.data.splice(at, 0, item.lines[k]));
        whole = true;
      }
    }
    const extra = this.times.length - this.limit;
    if (extra > 0) {
      for (const list of [this.times, this.candles, this.volume, ...[...this.lines.values()].map((e) => e.data)]) {
        list.splice(0, extra);
      }
      whole = true;
    }
    const scale = this.chart.timeScale();
    const range = scale.getVisibleLogicalRange();
    if (whole) {
      this.setAll();
      if (follow) scale.scrollToRealTime();
      else if (range && extra > 0) scale.setVisibleLogicalRange({ from: range.from - extra, to: range.to - extra });
    } else {
      for (const item of updates) {
        this.candleSeries.update(item.bar);
        this.volumeSeries.update(item.volume);
        [...this.lines.values()].forEach((entry, k) => entry.series.update(item.lines[k]));
      }
    }
    this.applyMarkers(content.markers, extra > 0);
    this.applyAverage(content.avg_price);
  }

  push(item) {
    this.times.push(item.time);
    this.candles.push(item.bar);
    this.volume.push(item.volume);
    [...this.lines.values()].forEach((entry, k) => entry.data.push(item.lines[k]));
  }

  setAll() {
    this.candleSeries.setData(this.candles);
    this.volumeSeries.setData(this.volume);
    for (const entry of this.lines.values()) entry.series.setData(entry.data);
  }

  // Whether the view shows the newest bar (the user has not scrolled back): then it keeps following it.
  following() {
    return this.times.length === 0 || this.chart.timeScale().scrollPosition() > -1;
  }

  applyMarkers(changes, trimmed) {
    if (!changes.length && !trimmed) return;
    for (const m of changes) {
      if (m.void) this.markers.delete(m.id);
      else this.markers.set(m.id, m);
    }
    const first = this.times.length ? this.times[0] : Infinity;
    const shown = [...this.markers.values()].filter((m) => m.time >= first).sort((a, b) => a.time - b.time || a.id - b.id);
    for (const m of shown.slice(0, -MAX_MARKERS)) this.markers.delete(m.id);
    const up = colour(this.root, "--pxkit-up");
    const down = colour(this.root, "--pxkit-down");
    this.shownMarkers = Math.min(shown.length, MAX_MARKERS);
    this.markerApi.setMarkers(shown.slice(-MAX_MARKERS).map((m) => {
      const buy = m.side === "buy";
      return {
        time: m.time, position: buy ? "belowBar" : "aboveBar", color: buy ? up : down,
        shape: buy ? "arrowUp" : "arrowDown", text: `${buy ? "B" : "S"}${m.size}`,
      };
    }));
  }

  applyAverage(price) {
    if (price === this.avgPrice) return;
    this.avgPrice = price;
    if (price == null) {
      if (this.avgLine) this.candleSeries.removePriceLine(this.avgLine);
      this.avgLine = null;
    } else if (this.avgLine) {
      this.avgLine.applyOptions({ price });
    } else {
      this.avgLine = this.candleSeries.createPriceLine({
        price, color: colour(this.root, "--pxkit-avg"), lineWidth: 1, lineStyle: LineStyle.Dashed,
        axisLabelVisible: true, title: "avg",
      });
    }
  }

  // After the chart has drawn the data: publish what is on screen (the DOM contract the browser tests read).
  paintSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const now = Date.now();
      const root = this.root;
      const last = this.candles[this.candles.length - 1];
      root.dataset.bars = String(this.candles.length);
      root.dataset.lastClose = last ? String(last.close) : "";
      root.dataset.seq = String(this.seq);
      root.dataset.markers = String(this.shownMarkers);
      root.dataset.avgPrice = this.avgPrice == null ? "" : String(this.avgPrice);
      for (const origin of this.origins) root.pxkitLags.push(now - origin);
      this.origins = [];
      const over = root.pxkitLags.length - MAX_LAGS;
      if (over > 0) root.pxkitLags.splice(0, over);
    });
  }

  remove() {
    this.model.off("msg:custom", this.onMessage);
    if (this.frame) cancelAnimationFrame(this.frame);
    this.themeWatch.disconnect();
    this.chart.remove();
    this.root.remove();
  }
}

export default {
  render({ model, el }) {
    const view = new ChartView(model, el);
    return () => view.remove();
  },
};
