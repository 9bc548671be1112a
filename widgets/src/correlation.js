// pxkit correlation heatmap view: a Vega-Lite spec built by Python (altair), drawn by vega-embed bundled here.
//
// Protocol: {kind: "state", seq, spec, values, shown, message} answers our "hello" and comes again on each refresh;
// `spec` is null when there is no matrix, `message` says why (seq 0: not computed yet). After each paint the root
// says what is on screen: data-ready="1", data-symbols, data-values (the matrix to 2 decimals, as the cells write
// it, "" without one), data-seq and data-message. Nothing is fetched: the spec carries its data and no $schema,
// and the view's loader refuses every load. All state lives in one HeatmapView per render, scoped to its element.
import { loader as vegaLoader } from "vega";
import embed from "vega-embed";

const DATASET = "matrix"; // the spec's data set, by name (pxkit.lab.correlations.DATASET)

function colour(root, name, fallback) {
  return getComputedStyle(root).getPropertyValue(name).trim() || fallback;
}

// The page's theme as Vega config, read from the root's CSS variables (correlation.css).
function theme(root) {
  const text = colour(root, "--pxkit-text", "#dddddd");
  const muted = colour(root, "--pxkit-muted", "#999999");
  const mono = colour(root, "--pxkit-mono", "monospace");
  return {
    background: colour(root, "--pxkit-bg", "#111111"),
    font: colour(root, "--pxkit-font", "sans-serif"),
    view: { stroke: null },
    axis: { domain: false, ticks: false, labelColor: text, labelFont: mono, labelFontSize: 12, labelPadding: 6 },
    legend: { labelColor: muted, titleColor: muted, labelFont: mono },
    text: { font: mono },
  };
}

// A loader that loads nothing: no data URL, image or spec can make this view reach the network.
function offlineLoader() {
  const refuse = (what) => Promise.reject(new Error(`pxkit: the heatmap loads nothing (${what})`));
  return Object.assign(vegaLoader(), { load: refuse, sanitize: refuse, http: refuse, file: refuse });
}

class HeatmapView {
  constructor(model, el) {
    this.model = model;
    this.seq = -1;
    this.result = null; // vega-embed's {view, finalize} of the drawn spec
    this.drawn = ""; // the drawn spec without its rows, and the theme: a new key means a new view
    this.painting = Promise.resolve();
    this.latest = null;
    this.removed = false;
    this.loader = offlineLoader();

    const root = (this.root = document.createElement("div"));
    root.className = "pxkit-correlation";
    root.dataset.symbols = model.get("symbols").join(",");
    root.dataset.timeframe = model.get("timeframe");
    const title = document.createElement("div");
    title.className = "pxkit-correlation-title";
    title.textContent = `correlation of returns · ${model.get("count")} × ${model.get("timeframe")}`;
    this.note = document.createElement("div");
    this.note.className = "pxkit-correlation-note";
    this.chart = document.createElement("div");
    this.chart.className = "pxkit-correlation-chart";
    root.append(title, this.note, this.chart);
    el.appendChild(root);

    this.themeWatch = new MutationObserver(() => this.latest && this.paintLatest(true));
    this.themeWatch.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
    this.onMessage = (content) => {
      if (content.kind !== "state" || content.seq < this.seq) return;
      this.seq = content.seq;
      this.latest = content;
      this.paintLatest(false);
    };
    model.on("msg:custom", this.onMessage);
    model.send({ kind: "hello" });
  }

  // Paints run one after another; each draws the newest state, so a burst ends on the last one.
  paintLatest(retheme) {
    if (retheme) this.drawn = "";
    this.painting = this.painting.then(() => this.paint(this.latest)).catch((error) => this.fail(error));
  }

  async paint(content) {
    if (this.removed || content.seq < 0) return;
    const root = this.root;
    if (content.spec == null) {
      this.drop();
      this.note.textContent = content.message || "";
      root.dataset.values = "";
    } else {
      const config = theme(root);
      const { datasets, ...shape } = content.spec;
      const key = JSON.stringify([shape, config]);
      if (this.result && key === this.drawn) {
        await this.result.view.data(DATASET, datasets[DATASET]).runAsync();
      } else {
        this.drop();
        const result = await embed(this.chart, content.spec, {
          mode: "vega-lite", renderer: "svg", actions: false, tooltip: false, defaultStyle: false,
          loader: this.loader, config,
        });
        if (this.removed) {
          result.finalize();
          return;
        }
        this.result = result;
        this.drawn = key;
      }
      this.note.textContent = "";
      root.dataset.values = JSON.stringify(content.shown);
    }
    root.dataset.message = content.message || "";
    root.dataset.seq = String(content.seq);
    if (content.seq > 0) root.dataset.ready = "1"; // seq 0 is "computing…", before any result
  }

  fail(error) {
    this.note.textContent = `could not draw the heatmap: ${error?.message ?? error}`;
    this.root.dataset.message = this.note.textContent;
  }

  drop() {
    if (this.result) this.result.finalize();
    this.result = null;
    this.drawn = "";
    this.chart.replaceChildren();
  }

  remove() {
    this.removed = true;
    this.model.off("msg:custom", this.onMessage);
    this.themeWatch.disconnect();
    this.drop();
    this.root.remove();
  }
}

export default {
  render({ model, el }) {
    const view = new HeatmapView(model, el);
    return () => view.remove();
  },
};
