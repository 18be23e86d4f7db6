// Building the page from data without ever parsing data as HTML: strings go in as text
// nodes or attribute values, so a problem summary can never become markup.
import { now as clockNow } from "./clock.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child); // a string becomes a text node
  }
  return node;
}

// Re-rendering replaces the node's children, and with them the focused one: put the
// keyboard back on its twin in the new content (same classes), or on the node itself.
export function replaceKeepingFocus(node, ...children) {
  const focused = document.activeElement;
  const hadFocus = focused !== node && node.contains(focused);
  const twin = hadFocus && focused.className ? `.${focused.className.trim().split(/\s+/).join(".")}` : null;
  node.replaceChildren(...children);
  if (!hadFocus) return;
  const again = twin ? node.querySelector(twin) : null;
  if (again && !again.disabled) again.focus();
  else {
    if (!node.hasAttribute("tabindex")) node.setAttribute("tabindex", "-1");
    node.focus();
  }
}

export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page lacks #${id}`);
  return node;
}

// Python's isoformat() gives microseconds; Date.parse only promises milliseconds.
export function parseTime(iso) {
  return new Date(String(iso).replace(/(\.\d{3})\d+/, "$1"));
}

export function agoText(when, now = clockNow()) {
  const seconds = Math.max(0, Math.floor((now - when.getTime()) / 1000));
  if (seconds < 1) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

const exactTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

// A <time> that keeps saying how long ago it was: see tickAges().
export function timeAgo(iso, className = "age") {
  const when = parseTime(iso);
  return el("time", { class: className, datetime: iso, title: exactTime.format(when), "data-ago": "" },
    agoText(when));
}

export function tickAges(root = document, now = clockNow()) {
  for (const node of root.querySelectorAll("time[data-ago]")) {
    const text = agoText(parseTime(node.getAttribute("datetime")), now);
    if (node.textContent !== text) node.textContent = text;
  }
}

export const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

// Runs fn at most `limit` at a time: a long queue must not open fifty requests at once.
export function limiter(limit) {
  let running = 0;
  const waiting = [];
  const next = () => {
    if (running >= limit || waiting.length === 0) return;
    running += 1;
    const { fn, resolve, reject } = waiting.shift();
    fn().then(resolve, reject).finally(() => { running -= 1; next(); });
  };
  return (fn) => new Promise((resolve, reject) => { waiting.push({ fn, resolve, reject }); next(); });
}
