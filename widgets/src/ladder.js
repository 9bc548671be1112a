// pxkit price ladder view: bid size | price | ask size | last trade size | own working orders, highest price on top.
//
// Protocol (JSON custom messages from Python; one list entry per row, rows from the highest price down):
//   {kind: "state", seq, prices, bids, asks, buys, sells, orders, last, last_size, avg, best_bid, best_ask}
//   {kind: "delta", seq, ...only the keys that changed}
//   {kind: "notice", text}  a pick or a cancel refused or failed
// `orders` holds [id, "buy"|"sell", size, price] for each working order on the ladder. We send {kind: "hello"} on
// render, {kind: "pick", price} when a row is clicked, {kind: "cancel", order_id} per order when its × is.
// After each paint the root says what is on screen: data-ready="1", data-seq, data-last, data-last-size, data-avg;
// each row is [data-price] (the price as shown) with cells [data-col=bid|price|ask|trade|orders], class `last` on
// the last trade's row, `avg` on the average price's row. All state lives in one LadderView per render.

const NOTICE_MS = 6000; // how long a notice stays up
const COLUMNS = ["bid", "price", "ask", "trade", "orders"];

class LadderView {
  constructor(model, el) {
    this.model = model;
    this.tick = model.get("tick_size") || 0.01;
    this.decimals = model.get("decimals");
    this.seq = -1; // last seq applied; -1 until the state arrives
    this.view = null;
    this.frame = 0;
    this.noticeTimer = 0;

    const root = (this.root = document.createElement("div"));
    root.className = "pxkit-ladder";
    root.dataset.symbol = model.get("symbol");
    const head = document.createElement("div");
    head.className = "pxkit-ladder-head";
    this.title = document.createElement("b");
    this.title.textContent = model.get("symbol");
    this.summary = document.createElement("span");
    head.append(this.title, this.summary);
    const table = document.createElement("table");
    const header = document.createElement("tr");
    for (const [name, label] of [["bid", "bid"], ["price", "price"], ["ask", "ask"], ["trade", "last"], ["orders", "orders"]]) {
      const th = document.createElement("th");
      th.dataset.col = name;
      th.textContent = label;
      header.appendChild(th);
    }
    table.createTHead().appendChild(header);
    this.body = table.createTBody();
    this.note = document.createElement("div");
    this.note.className = "pxkit-ladder-note";
    root.append(head, table, this.note);
    el.appendChild(root);

    this.onClick = (event) => this.clicked(event);
    this.body.addEventListener("click", this.onClick);
    this.onMessage = (content) => this.receive(content);
    model.on("msg:custom", this.onMessage);
    model.send({ kind: "hello" });
  }

  receive(content) {
    if (content.kind === "notice") {
      this.showNotice(content.text);
      return;
    }
    if (content.kind === "state") {
      this.view = { ...content };
    } else if (content.kind === "delta") {
      if (this.seq < 0 || content.seq <= this.seq) return; // no state yet, or already in it
      if (content.seq !== this.seq + 1) { // a gap: ask for the whole state again
        this.model.send({ kind: "hello" });
        return;
      }
      Object.assign(this.view, content);
    } else {
      return;
    }
    this.seq = content.seq;
    this.paintSoon();
  }

  shown(price) {
    return price == null ? "" : Number(price).toFixed(this.decimals);
  }

  ticks(price) {
    return price == null ? null : Math.round(price / this.tick);
  }

  clicked(event) {
    const row = event.target.closest("tr[data-price]");
    if (!row || !this.body.contains(row)) return;
    const cancel = event.target.closest("button[data-cancel]");
    if (cancel) {
      event.stopPropagation();
      for (const id of cancel.dataset.cancel.split(",")) this.model.send({ kind: "cancel", order_id: Number(id) });
      return;
    }
    this.model.send({ kind: "pick", price: Number(row.dataset.price) });
  }

  showNotice(text) {
    this.note.textContent = text;
    this.note.classList.add("shown");
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => this.note.classList.remove("shown"), NOTICE_MS);
  }

  paintSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.paint();
    });
  }

  // One <tr> per price, reused from paint to paint; the rows' cells written from the view.
  paint() {
    const v = this.view;
    const rows = this.body.rows;
    while (rows.length > v.prices.length) this.body.deleteRow(-1);
    while (rows.length < v.prices.length) {
      const tr = this.body.insertRow();
      for (const name of COLUMNS) tr.insertCell().dataset.col = name;
    }
    const lastTicks = this.ticks(v.last);
    const avgTicks = this.ticks(v.avg);
    const bidTicks = this.ticks(v.best_bid);
    const askTicks = this.ticks(v.best_ask);
    const deepest = Math.max(1, ...v.bids, ...v.asks);
    const byPrice = new Map(); // price as shown -> [[id, side, size], ...]
    for (const [id, side, size, price] of v.orders) {
      const key = this.shown(price);
      if (!byPrice.has(key)) byPrice.set(key, []);
      byPrice.get(key).push([id, side, size]);
    }
    v.prices.forEach((price, i) => {
      const tr = rows[i];
      const key = this.shown(price);
      const at = this.ticks(price);
      tr.dataset.price = key;
      tr.classList.toggle("last", at === lastTicks);
      tr.classList.toggle("avg", at === avgTicks);
      tr.classList.toggle("best-bid", at === bidTicks);
      tr.classList.toggle("best-ask", at === askTicks);
      tr.classList.toggle("above", askTicks != null && at >= askTicks);
      const [bid, cell, ask, trade, orders] = tr.cells;
      this.size(bid, v.bids[i], deepest);
      cell.textContent = key;
      this.size(ask, v.asks[i], deepest);
      trade.textContent = at === lastTicks && v.last_size ? String(v.last_size) : "";
      this.orders(orders, byPrice.get(key) || [], v.buys[i], v.sells[i]);
    });
    const root = this.root;
    root.dataset.seq = String(this.seq);
    root.dataset.last = this.shown(v.last);
    root.dataset.lastSize = v.last_size == null ? "" : String(v.last_size);
    root.dataset.avg = v.avg == null ? "" : String(v.avg);
    const parts = [`last ${v.last == null ? "–" : this.shown(v.last)}`];
    if (v.avg != null) parts.push(`avg ${this.shown(v.avg)}`);
    this.summary.textContent = parts.join(" · ");
    root.dataset.ready = "1";
  }

  size(td, value, deepest) {
    td.textContent = value ? String(value) : "";
    td.style.setProperty("--fill", value ? `${Math.round((100 * value) / deepest)}%` : "0%");
  }

  // The working orders at one price: "B<size>" / "S<size>", the count in brackets when more than one, and a ×.
  orders(td, here, buys, sells) {
    td.dataset.buys = String(buys);
    td.dataset.sells = String(sells);
    const parts = [];
    for (const [side, total, cls, letter] of [["buy", buys, "buy", "B"], ["sell", sells, "sell", "S"]]) {
      if (!total) continue;
      const count = here.filter((o) => o[1] === side).length;
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = count > 1 ? `${letter}${total}(${count})` : `${letter}${total}`;
      span.title = `${count} working ${side} order${count > 1 ? "s" : ""}, ${total} contract${total > 1 ? "s" : ""}`;
      parts.push(span);
    }
    if (here.length) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.cancel = here.map((o) => o[0]).join(",");
      button.title = here.length > 1 ? "cancel these orders" : "cancel this order";
      button.textContent = "×";
      parts.push(button);
    }
    td.replaceChildren(...parts);
  }

  remove() {
    this.model.off("msg:custom", this.onMessage);
    this.body.removeEventListener("click", this.onClick);
    if (this.frame) cancelAnimationFrame(this.frame);
    clearTimeout(this.noticeTimer);
    this.root.remove();
  }
}

export default {
  render({ model, el }) {
    const view = new LadderView(model, el);
    return () => view.remove();
  },
};
