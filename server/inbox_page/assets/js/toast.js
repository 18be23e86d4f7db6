// Short messages in the corner: a lost claim, a failed request. Read out by screen
// readers through the container's live region.
import { byId, el } from "./dom.js";

const SHOWN_MS = 8000;

export function toast(message, { kind = "info" } = {}) {
  const item = el("div", { class: `toast toast-${kind}` });
  const close = () => {
    item.classList.add("toast-leaving");
    setTimeout(() => item.remove(), 200);
  };
  item.append(
    el("p", { class: "toast-text" }, message),
    el("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", onclick: close }, "×"),
  );
  byId("toasts").append(item);
  setTimeout(close, SHOWN_MS);
  return item;
}
