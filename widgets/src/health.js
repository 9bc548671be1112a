// pxkit health badge: ok / degraded / down, each hub's state, stale feeds and reconnects of a suite.
//
// Protocol: {kind: "state", health, score, reasons, hubs: {name: connected}, stale: [symbol], reconnects} answers our
// "hello" and comes again whenever it changes. After each paint the root says what is on screen: data-ready="1",
// data-health, and the parts [data-role=hubs] (one [data-hub][data-up] each), [data-role=stale], [data-role=reconnects].
// All state is scoped to the render's element.
function part(role) {
  const span = document.createElement("span");
  span.dataset.role = role;
  return span;
}

function paint(root, parts, state) {
  root.dataset.health = state.health;
  root.title = state.reasons.length ? state.reasons.join("\n") : "no problems seen";
  parts.level.textContent = state.health;
  parts.score.textContent = String(state.score);
  parts.hubs.replaceChildren(...Object.entries(state.hubs).map(([hub, up]) => {
    const item = document.createElement("span");
    item.className = "pxkit-health-hub";
    item.dataset.hub = hub;
    item.dataset.up = up ? "1" : "0";
    item.textContent = `${hub} ${up ? "up" : "down"}`;
    return item;
  }));
  parts.stale.dataset.count = String(state.stale.length);
  parts.stale.textContent = state.stale.length ? `stale ${state.stale.join(", ")}` : "feeds live";
  parts.reconnects.dataset.count = String(state.reconnects);
  parts.reconnects.textContent = `reconnects ${state.reconnects}`;
  root.dataset.ready = "1";
}

export default {
  render({ model, el }) {
    const root = document.createElement("div");
    root.className = "pxkit-health";
    const dot = document.createElement("span");
    dot.className = "pxkit-health-dot";
    const parts = {
      level: part("level"), score: part("score"), hubs: part("hubs"), stale: part("stale"),
      reconnects: part("reconnects"),
    };
    root.append(dot, parts.level, parts.score, parts.hubs, parts.stale, parts.reconnects);
    el.appendChild(root);
    const onMessage = (content) => {
      if (content.kind === "state") paint(root, parts, content);
    };
    model.on("msg:custom", onMessage);
    model.send({ kind: "hello" });
    return () => {
      model.off("msg:custom", onMessage);
      root.remove();
    };
  },
};
