// The bell: unread count on the button, the latest notifications in a panel, mark read.
// Notifications have no event of their own: their rows are written with the hand-off, so
// the page refetches when a hand-off arrives, on reconnect, and when the panel opens.
import { failureText } from "./api.js";
import { byId, el, timeAgo } from "./dom.js";
import { toast } from "./toast.js";

const SHOWN = 20;
const REFRESH_DEBOUNCE_MS = 300;

export class Bell {
  constructor({ api, onShowHandoff }) {
    this.api = api;
    this.onShowHandoff = onShowHandoff;
    this.items = [];
    this.unread = 0;
    this.button = byId("bell-button");
    this.panel = byId("bell-panel");
    this.button.addEventListener("click", () => this.toggle());
    byId("bell-read-all").addEventListener("click", () => this.markAllRead());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.panel.hidden) this.close({ refocus: true });
    });
    document.addEventListener("click", (event) => {
      if (!this.panel.hidden && !event.target.closest(".bell")) this.close();
    });
  }

  refreshSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_DEBOUNCE_MS);
  }

  async refresh() {
    try {
      const { data } = await this.api(`/notifications?limit=${SHOWN}`);
      this.items = data.items;
      this.unread = data.unread_count;
      this.render();
    } catch {
      // The badge keeps its last count; the next refresh tries again.
    }
  }

  toggle() {
    if (this.panel.hidden) this.open();
    else this.close({ refocus: true });
  }

  open() {
    this.panel.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    this.refresh();
    (this.panel.querySelector("button") || this.panel).focus();
  }

  close({ refocus = false } = {}) {
    this.panel.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    if (refocus) this.button.focus();
  }

  async markRead(id) {
    try {
      const { data } = await this.api(`/notifications/${id}/read`, { method: "POST" });
      const index = this.items.findIndex((item) => item.id === id);
      if (index >= 0 && !this.items[index].read_at) this.unread = Math.max(0, this.unread - 1);
      if (index >= 0) this.items[index] = data;
      this.render();
    } catch (error) {
      toast(failureText(error), { kind: "error" });
    }
  }

  async markAllRead() {
    const unread = this.items.filter((item) => !item.read_at);
    await Promise.all(unread.map((item) => this.markRead(item.id)));
    await this.refresh();
    // The button just hid itself: keep the keyboard in the panel.
    if (!this.panel.hidden && !this.panel.contains(document.activeElement)) this.panel.focus();
  }

  render() {
    const badge = byId("bell-count");
    badge.hidden = this.unread === 0;
    badge.textContent = this.unread > 99 ? "99+" : String(this.unread);
    this.button.setAttribute("aria-label", this.unread ? `Notifications, ${this.unread} unread` : "Notifications");
    byId("bell-empty").hidden = this.items.length > 0;
    byId("bell-read-all").hidden = this.unread === 0;
    const focusedId = document.activeElement?.closest?.(".bell-item")?.dataset.id;
    byId("bell-list").replaceChildren(...this.items.map((item) => this.row(item)));
    if (focusedId) {
      const again = byId("bell-list").querySelector(`.bell-item[data-id="${CSS.escape(focusedId)}"] button`);
      (again || this.panel.querySelector("button") || this.panel).focus();
    }
  }

  row(item) {
    const unread = !item.read_at;
    return el("li", { class: unread ? "bell-item unread" : "bell-item", dataset: { id: item.id } },
      el("p", { class: "bell-item-title" },
        unread ? el("span", { class: "visually-hidden" }, "Unread: ") : null, item.title),
      item.body ? el("p", { class: "bell-item-body" }, item.body) : null,
      el("div", { class: "bell-item-foot" },
        timeAgo(item.created_at),
        item.handoff_id
          ? el("button", {
            type: "button",
            class: "link-button",
            onclick: () => { this.close(); this.onShowHandoff(item.handoff_id); if (unread) this.markRead(item.id); },
          }, "Show")
          : null,
        unread
          ? el("button", { type: "button", class: "link-button", onclick: () => this.markRead(item.id) }, "Mark read")
          : null));
  }
}
