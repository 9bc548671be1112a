// pxkit blotter view: account, positions, working orders (each with a cancel button), recent fills, flatten-all.
//
// Protocol (custom JSON messages from Python, each the whole blotter):
//   {kind: "state"|"update", seq, busy, account, realized, lockouts, positions, orders, fills, message}
//   message: {id, level, text, order_id} (order_id: the order a cancel's outcome is about, else null)
// To Python: {kind: "hello"} on render, {kind: "cancel", order_id}, {kind: "flatten"}.
// DOM contract: root .pxkit-blotter, data-ready="1" after the first paint, data-busy="1" while a flatten runs;
// tr[data-position][data-size], tr[data-order-id][data-symbol][data-leg] with button[data-action=cancel],
// tr[data-fill-id], [data-role=balance|realized|lockouts|message], button[data-action=flatten].
// Rows are kept by key and updated in place, so a button under the pointer survives the updates around it.

const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function price(value, decimals) {
  return value == null ? "" : Number(value).toFixed(decimals);
}

function signedMoney(value) {
  if (value == null) return "";
  return `${value > 0 ? "+" : value < 0 ? "\u2212" : ""}${money.format(Math.abs(value))}`;
}

function tone(value) {
  return value > 0 ? "up" : value < 0 ? "down" : "";
}

// One table with a header; `sync(items)` keeps a row per key, in the items' order.
class Table {
  constructor(parent, title, columns, { key, build, fill, empty }) {
    this.section = make("section", "pxkit-blotter-section");
    this.section.appendChild(make("h4", "", title));
    this.table = make("table");
    const head = make("tr");
    for (const [name, align] of columns) head.appendChild(make("th", align === "r" ? "num" : "", name));
    this.table.appendChild(make("thead")).appendChild(head);
    this.body = this.table.appendChild(make("tbody"));
    this.empty = make("div", "pxkit-blotter-empty", empty);
    this.section.append(this.table, this.empty);
    parent.appendChild(this.section);
    this.width = columns.length;
    this.rows = new Map();
    Object.assign(this, { key, build, fill });
  }

  sync(items) {
    const seen = new Set();
    let at = this.body.firstChild;
    for (const item of items) {
      const id = String(this.key(item));
      seen.add(id);
      let row = this.rows.get(id);
      if (!row) {
        row = make("tr");
        for (let i = 0; i < this.width; i += 1) row.appendChild(make("td"));
        this.build(row, item);
        this.rows.set(id, row);
      }
      this.fill(row, item);
      if (row !== at) this.body.insertBefore(row, at);
      else at = at.nextSibling;
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.remove();
        this.rows.delete(id);
      }
    }
    this.empty.hidden = items.length > 0;
    this.table.hidden = items.length === 0;
  }
}

function cell(row, i, text, className = "") {
  const td = row.cells[i];
  if (td.textContent !== text) td.textContent = text;
  if (td.className !== className) td.className = className;
}

class BlotterView {
  constructor(model, el) {
    this.model = model;
    const root = (this.root = make("div", "pxkit-blotter"));
    root.dataset.busy = "0";

    const bar = make("div", "pxkit-blotter-bar");
    const fact = (label, role) => {
      const box = make("span", "pxkit-blotter-fact");
      box.appendChild(make("span", "pxkit-blotter-label", label));
      const value = box.appendChild(make("span", "pxkit-blotter-value"));
      value.dataset.role = role;
      bar.appendChild(box);
      return { box, value };
    };
    this.account = fact("", "balance");
    this.realized = fact("realised", "realized");
    this.lockouts = make("span", "pxkit-blotter-lockouts");
    this.lockouts.dataset.role = "lockouts";
    this.flatten = make("button", "pxkit-blotter-flatten", "Flatten all");
    this.flatten.type = "button";
    this.flatten.dataset.action = "flatten";
    this.flatten.title = "Cancel every working order and close every position";
    this.flatten.addEventListener("click", () => {
      if (this.root.dataset.busy === "1") return;
      this.flatten.disabled = true; // until the kernel says whether it runs
      model.send({ kind: "flatten" });
    });
    bar.append(this.lockouts, make("span", "pxkit-blotter-gap"), this.flatten);
    this.message = make("div", "pxkit-blotter-message");
    this.message.dataset.role = "message";
    root.append(bar, this.message);

    this.positions = new Table(root, "Positions", [["symbol"], ["size", "r"], ["avg price", "r"], ["last", "r"], ["open P&L", "r"]], {
      key: (p) => p.symbol,
      build: (row, p) => { row.dataset.position = p.symbol; },
      fill: (row, p) => {
        row.dataset.size = String(p.size);
        cell(row, 0, p.symbol, "sym");
        cell(row, 1, p.size > 0 ? `+${p.size}` : String(p.size), `num ${p.size > 0 ? "up" : "down"}`);
        cell(row, 2, price(p.avg_price, p.decimals), "num");
        cell(row, 3, price(p.last, p.decimals), "num");
        cell(row, 4, signedMoney(p.pnl), `num ${tone(p.pnl)}`);
      },
      empty: "flat",
    });

    this.orders = new Table(root, "Working orders", [["id"], ["symbol"], ["side"], ["type"], ["size", "r"], ["price", "r"], ["stop", "r"], ["leg"], [""]], {
      key: (o) => o.id,
      build: (row, o) => {
        row.dataset.orderId = String(o.id);
        row.dataset.symbol = o.symbol;
        const button = make("button", "pxkit-blotter-cancel", "Cancel");
        button.type = "button";
        button.dataset.action = "cancel";
        button.addEventListener("click", () => {
          this.pending.add(o.id); // the row leaves once the gateway cancelled it; its failure re-enables it
          button.disabled = true;
          model.send({ kind: "cancel", order_id: o.id });
        });
        row.cells[8].appendChild(button);
      },
      fill: (row, o) => {
        row.dataset.leg = o.leg || "";
        row.cells[8].firstChild.disabled = this.pending.has(o.id);
        cell(row, 0, String(o.id), "id");
        cell(row, 1, o.symbol, "sym");
        cell(row, 2, o.side, o.side === "buy" ? "up" : "down");
        cell(row, 3, o.type.replace("_", " "));
        cell(row, 4, o.filled ? `${o.filled}/${o.size}` : String(o.size), "num");
        cell(row, 5, price(o.price, o.decimals), "num");
        cell(row, 6, price(o.stop, o.decimals), "num");
        cell(row, 7, o.leg || "", "leg");
      },
      empty: "no working orders",
    });

    this.fills = new Table(root, "Recent fills", [["time"], ["symbol"], ["side"], ["size", "r"], ["price", "r"], ["P&L", "r"], ["fees", "r"]], {
      key: (f) => f.id,
      build: (row, f) => { row.dataset.fillId = String(f.id); },
      fill: (row, f) => {
        cell(row, 0, clock.format(new Date(f.time)), "time");
        cell(row, 1, f.symbol, "sym");
        cell(row, 2, f.side, f.side === "buy" ? "up" : "down");
        cell(row, 3, String(f.size), "num");
        cell(row, 4, price(f.price, f.decimals), "num");
        cell(row, 5, signedMoney(f.pnl), `num ${tone(f.pnl)}`);
        cell(row, 6, money.format(f.fees), "num muted");
      },
      empty: "no fills yet",
    });

    el.appendChild(root);
    this.pending = new Set(); // ids of the orders whose cancel this view sent and has heard no outcome of
    this.seq = -1;
    this.onMessage = (content) => this.receive(content);
    model.on("msg:custom", this.onMessage);
    model.send({ kind: "hello" });
  }

  receive(content) {
    if (content.kind !== "state" && content.kind !== "update") return;
    if (content.kind === "update" && content.seq <= this.seq) return; // older than what is shown
    this.seq = content.seq;
    this.paint(content);
  }

  paint(s) {
    const root = this.root;
    root.dataset.busy = s.busy ? "1" : "0";
    this.flatten.disabled = s.busy;
    this.flatten.textContent = s.busy ? "Flattening\u2026" : "Flatten all";

    const { account, realized } = s;
    this.account.box.firstChild.textContent = account.name;
    this.account.value.textContent = money.format(account.balance);
    this.realized.box.firstChild.textContent = realized.scope === "day" ? "realised today" : "realised (session)";
    this.realized.value.textContent = signedMoney(realized.value);
    this.realized.value.className = `pxkit-blotter-value ${tone(realized.value)}`;
    this.realized.box.title = `fees ${money.format(realized.fees)}${realized.scope === "day" ? "" : " (fills since the suite started)"}`;

    this.lockouts.replaceChildren(...s.lockouts.map((l) => make("span", "pxkit-blotter-lockout",
      l.until == null ? l.reason : `locked until ${clock.format(new Date(l.until))}: ${l.reason}`)));
    this.lockouts.hidden = s.lockouts.length === 0;

    const message = s.message;
    this.message.textContent = message ? message.text : "";
    this.message.dataset.level = message ? message.level : "";
    this.message.hidden = !message;
    if (message && message.id !== this.messageId) {
      this.messageId = message.id;
      this.pending.delete(message.order_id); // only the order the outcome is about: other cancels still run
    }
    const working = new Set(s.orders.map((o) => o.id));
    for (const id of this.pending) if (!working.has(id)) this.pending.delete(id); // gone: nothing to wait for

    this.positions.sync(s.positions);
    this.orders.sync(s.orders);
    this.fills.sync(s.fills);
    root.dataset.seq = String(s.seq);
    root.dataset.ready = "1";
  }

  remove() {
    this.model.off("msg:custom", this.onMessage);
    this.root.remove();
  }
}

export default {
  render({ model, el }) {
    const view = new BlotterView(model, el);
    return () => view.remove();
  },
};
