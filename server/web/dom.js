// Small DOM helpers shared by the pages. User data only ever becomes text nodes
// (textContent), never HTML.

/** An element `tag` with `props` (className, id, type, dataset, on<event> handlers) and
 * children (strings become text nodes). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'className' || key === 'id' || key === 'type' || key === 'title'
      || key === 'value' || key === 'disabled' || key === 'placeholder') node[key] = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === 'string' || typeof child === 'number'
      ? document.createTextNode(String(child)) : child);
  }
  return node;
}

/** The element with this id (throws when the page lacks it: a bug, not input). */
export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`no #${id}`);
  return node;
}

/** Replaces the children of `node` with `children`. */
export function fill(node, ...children) {
  node.replaceChildren(...children.filter((c) => c !== undefined && c !== null));
}

/** Shows or hides `node`. */
export function show(node, visible) {
  node.hidden = !visible;
}

/** hh:mm:ss of a unix-ms time. */
export function clock(ms) {
  const d = new Date(Number(ms) || Date.now());
  return d.toLocaleTimeString([], { hour12: false });
}

/** A one-line notice in `node` (an error when `isError`). */
export function say(node, text, isError = false) {
  node.textContent = text;
  node.classList.toggle('error', Boolean(isError));
}
