// The page's one clock. Every countdown and "… ago" reads it, so should the page ever
// learn the server's time (an offset measured against it), this is the one place to
// add it, and every card moves together.

export function now() {
  return Date.now();
}
