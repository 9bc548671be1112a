// pxkit order ticket view: side, size, type, price, optional bracket, a confirm step, the order's live status.
//
// Protocol (see pxkit/lab/ticketing.py): we send {kind: "hello"} on render, {kind: "review", side, size, type, price,
// stop_ticks, target_ticks} (the fields as typed: Python checks them), {kind: "send", token}, {kind: "back"}.
// Python sends "state" (everything), "confirm", "error", "status", "staged" and "price" messages.
// DOM contract: the root `.pxkit-ticket` carries data-symbol, data-stage (edit|confirm|sending|working|done|error|
// unknown), data-order-id once known and data-ready="1" after the first state is painted. All state lives in one
// TicketView per render, scoped to its element.

const TYPES = [
  ["market", "Market"], ["limit", "Limit"], ["stop", "Stop"], ["trailing_stop", "Trailing stop"],
  ["join_bid", "Join bid"], ["join_ask", "Join ask"],
];
const PRICED = new Set(["limit", "stop", "trailing_stop"]);
const BRACKETED = new Set(["market", "limit", "stop"]);
const JOIN_SIDE = { join_bid: "buy", join_ask: "sell" };
const FOLLOWING = new Set(["working", "done", "error", "unknown"]);

function make(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function field(label, input, unit = "", extra = "") {
  const box = make("label", { class: `pxkit-ticket-field ${extra}`.trim() });
  box.append(make("span", { class: "pxkit-ticket-label" }, label), input);
  if (unit) box.append(make("span", { class: "pxkit-ticket-unit" }, unit));
  return box;
}

class TicketView {
  constructor(model, el) {
    this.model = model;
    this.decimals = 2;
    this.tick = Number(model.get("tick_size")) || 0.01;
    this.stage = "edit";
    this.token = null;
    this.sentToken = null;
    this.last = null;
    this.painted = false;
    this.frame = null; // the animation frame that marks the first paint, until it runs

    const root = make("div", { class: "pxkit-ticket", "data-symbol": model.get("symbol") || "", "data-stage": "edit" });
    this.root = root;
    const head = make("div", { class: "pxkit-ticket-head" });
    head.append(make("b", {}, model.get("symbol") || ""));
    this.quote = make("span", { class: "pxkit-ticket-quote" });
    this.bid = make("span", { class: "pxkit-ticket-bid" }, "\u2014");
    this.ask = make("span", { class: "pxkit-ticket-ask" }, "\u2014");
    this.lastText = make("span", { class: "pxkit-ticket-last" }, "\u2014");
    this.quote.append(this.bid, make("span", { class: "pxkit-ticket-sep" }, "\u00d7"), this.ask,
      make("span", { class: "pxkit-ticket-sep" }, "last"), this.lastText);
    head.append(this.quote);

    const sides = make("div", { class: "pxkit-ticket-sides" });
    this.buy = make("button", { type: "button", "data-side": "buy", "aria-pressed": "true" }, "Buy");
    this.sell = make("button", { type: "button", "data-side": "sell", "aria-pressed": "false" }, "Sell");
    sides.append(this.buy, this.sell);

    this.type = make("select", { "data-field": "type" });
    for (const [value, label] of TYPES) this.type.append(make("option", { value }, label));
    this.size = make("input", { "data-field": "size", type: "number", min: "1", step: "1", value: "1", inputmode: "numeric" });
    this.price = make("input", { "data-field": "price", type: "number", step: String(this.tick), inputmode: "decimal" });
    this.stop = make("input", { "data-field": "stop", type: "number", min: "1", step: "1", placeholder: "none", inputmode: "numeric" });
    this.target = make("input", { "data-field": "target", type: "number", min: "1", step: "1", placeholder: "none", inputmode: "numeric" });
    const fields = make("div", { class: "pxkit-ticket-fields" });
    fields.append(field("Type", this.type), field("Size", this.size), field("Price", this.price, "", "pxkit-ticket-wide"),
      field("Stop", this.stop, "ticks"), field("Target", this.target, "ticks"));

    const actions = make("div", { class: "pxkit-ticket-actions" });
    this.reviewButton = make("button", { type: "button", "data-action": "review" }, "Review");
    this.sendButton = make("button", { type: "button", "data-action": "send" }, "Send");
    this.backButton = make("button", { type: "button", "data-action": "back" }, "Back");
    actions.append(this.reviewButton, this.sendButton, this.backButton);

    this.message = make("div", { class: "pxkit-ticket-message", "data-role": "message", role: "alert" });
    this.confirm = make("div", { class: "pxkit-ticket-confirm", "data-role": "confirm" });
    this.status = make("div", { class: "pxkit-ticket-status", "data-role": "status", "aria-live": "polite" });
    root.append(head, sides, fields, actions, this.message, this.confirm, this.status);
    el.append(root);

    this.buy.addEventListener("click", () => this.setSide("buy"));
    this.sell.addEventListener("click", () => this.setSide("sell"));
    this.type.addEventListener("change", () => this.typeChanged());
    this.price.addEventListener("change", () => this.snapPrice());
    this.reviewButton.addEventListener("click", () => this.review());
    this.sendButton.addEventListener("click", () => this.send());
    this.backButton.addEventListener("click", () => this.model.send({ kind: "back" }));
    this.onMessage = (content) => this.received(content);
    model.on("msg:custom", this.onMessage);
    this.apply();
    model.send({ kind: "hello" });
  }

  // ---------------------------------------------------------------- the form

  side() {
    return this.sell.getAttribute("aria-pressed") === "true" ? "sell" : "buy";
  }

  setSide(side) {
    this.buy.setAttribute("aria-pressed", String(side === "buy"));
    this.sell.setAttribute("aria-pressed", String(side === "sell"));
    this.root.dataset.side = side;
  }

  typeChanged() {
    const type = this.type.value;
    if (JOIN_SIDE[type]) this.setSide(JOIN_SIDE[type]);
    if (PRICED.has(type) && this.price.value === "" && this.last != null) this.price.value = this.format(this.last);
    this.apply();
  }

  // The price the user typed, put on the tick grid (Python refuses a price off it).
  snapPrice() {
    const value = Number(this.price.value);
    if (this.price.value === "" || !Number.isFinite(value) || value <= 0) return;
    this.price.value = (Math.round(value / this.tick) * this.tick).toFixed(this.decimals);
  }

  format(price) {
    return (Math.round(price / this.tick) * this.tick).toFixed(this.decimals);
  }

  money(price) {
    return price == null ? "\u2014" : Number(price).toLocaleString(undefined,
      { minimumFractionDigits: this.decimals, maximumFractionDigits: this.decimals });
  }

  fill(form) {
    if (!form) return;
    this.setSide(form.side === "sell" ? "sell" : "buy");
    if (TYPES.some(([value]) => value === form.type)) this.type.value = form.type;
    this.size.value = form.size == null ? "" : String(form.size);
    this.price.value = form.price == null || form.price === "" ? "" : String(form.price);
    this.stop.value = form.stop_ticks == null ? "" : String(form.stop_ticks);
    this.target.value = form.target_ticks == null ? "" : String(form.target_ticks);
    if (form.price != null && form.price !== "" && Number.isFinite(Number(form.price))) this.snapPrice();
  }

  review() {
    this.snapPrice();
    const type = this.type.value;
    const bracket = BRACKETED.has(type); // a disabled field's old value is not sent
    this.model.send({
      kind: "review", side: this.side(), size: this.size.value, type,
      price: PRICED.has(type) ? this.price.value : null,
      stop_ticks: bracket ? this.stop.value : "", target_ticks: bracket ? this.target.value : "",
    });
  }

  // Sends the confirmed order once: the button disables itself, and a token is never sent twice from this view.
  send() {
    if (this.stage !== "confirm" || !this.token || this.sentToken === this.token) return;
    this.sentToken = this.token;
    this.sendButton.disabled = true;
    this.model.send({ kind: "send", token: this.token });
  }

  // ---------------------------------------------------------------- what Python says

  received(content) {
    switch (content.kind) {
      case "state":
        this.decimals = content.decimals;
        this.tick = content.tick_size || this.tick;
        this.price.step = String(this.tick);
        this.fill(content.form);
        this.showQuote(content.price);
        this.setConfirm(content.confirm);
        this.showStatus(content.status);
        this.setStage(content.stage, content.message);
        this.paintSoon();
        break;
      case "confirm":
        this.setConfirm(content);
        this.setStage("confirm", "");
        break;
      case "error":
        this.setStage(content.stage || "edit", content.message);
        break;
      case "staged":
        this.fill(content.form);
        this.setStage(content.stage || "edit", "");
        break;
      case "status":
        this.showStatus(content);
        this.setStage(content.stage, content.message);
        break;
      case "price":
        this.showQuote(content);
        break;
      default:
        break;
    }
  }

  setStage(stage, message) {
    this.stage = stage;
    if (stage !== "confirm") this.setConfirm(null); // what was sent shows in the status from here on
    this.message.textContent = message || "";
    this.root.dataset.stage = stage;
    this.apply();
  }

  setConfirm(confirm) {
    this.confirm.replaceChildren();
    this.token = confirm ? confirm.token : null;
    if (!confirm) return;
    this.confirm.append(make("div", { class: "pxkit-ticket-summary" }, confirm.summary),
      make("div", { class: "pxkit-ticket-risk" },
        confirm.risk_usd == null ? `Risk: ${confirm.risk_text}` : `Risk $${this.money(confirm.risk_usd)} (${confirm.risk_text})`));
  }

  showQuote(price) {
    if (!price) return;
    this.last = price.last;
    this.bid.textContent = this.money(price.bid);
    this.ask.textContent = this.money(price.ask);
    this.lastText.textContent = this.money(price.last);
    this.root.dataset.last = price.last == null ? "" : String(price.last);
  }

  showStatus(status) {
    this.status.replaceChildren();
    if (!status) return;
    if (status.order_id != null) this.root.dataset.orderId = String(status.order_id);
    else delete this.root.dataset.orderId;
    const line = make("div", { class: "pxkit-ticket-outcome", "data-outcome": status.outcome || "" });
    line.textContent = (status.outcome || "").toUpperCase();
    this.status.append(line);
    if (!status.orders || !status.orders.length) {
      this.status.append(make("div", { class: "pxkit-ticket-note" }, status.text || ""));
      return;
    }
    const table = make("table");
    for (const row of status.orders) {
      const tr = make("tr", { "data-role-name": row.role, "data-status": row.status });
      const cells = [row.role, row.id == null ? "" : String(row.id), row.side || "", row.type || "",
        row.size == null ? "" : String(row.size), row.price == null ? "" : this.money(row.price), row.status,
        row.filled ? `${row.filled} @ ${this.money(row.fill_price)}` : ""];
      cells.forEach((text, k) => {
        const td = make("td", k === 4 || k === 5 || k === 7 ? { class: "pxkit-ticket-num" } : {}, text);
        if (k === 2 && text) td.classList.add(`pxkit-ticket-${text}`);
        tr.append(td);
      });
      table.append(tr);
    }
    this.status.append(table);
  }

  // Which controls work in the current stage.
  apply() {
    const editing = this.stage === "edit";
    const type = this.type.value;
    this.type.disabled = this.size.disabled = !editing;
    this.buy.disabled = this.sell.disabled = !editing || Boolean(JOIN_SIDE[type]);
    this.price.disabled = !editing || !PRICED.has(type);
    this.price.placeholder = PRICED.has(type) ? "" : type === "join_bid" ? "best bid" : type === "join_ask" ? "best ask" : "market";
    this.stop.disabled = this.target.disabled = !editing || !BRACKETED.has(type);
    this.reviewButton.disabled = !editing;
    this.sendButton.disabled = this.stage !== "confirm" || !this.token || this.sentToken === this.token;
    this.backButton.disabled = !(this.stage === "confirm" || FOLLOWING.has(this.stage));
    this.backButton.textContent = this.stage === "confirm" || this.stage === "edit" ? "Back" : "New order";
  }

  paintSoon() {
    if (this.painted || this.frame != null) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.painted = true;
      this.root.dataset.ready = "1";
    });
  }

  remove() {
    if (this.frame != null) cancelAnimationFrame(this.frame);
    this.frame = null;
    this.model.off("msg:custom", this.onMessage);
    this.root.remove();
  }
}

export default {
  render({ model, el }) {
    const view = new TicketView(model, el);
    return () => view.remove();
  },
};
