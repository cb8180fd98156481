// What the browser scripts share: launching Debian's chromium through playwright-core, the
// line protocol with tests/browser.rs (we print `STEP <name> <json>`, it answers `GO <name>`),
// and waiting for text on a page.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';

export const CHROMIUM = process.env.FEIGE_CHROMIUM || '/usr/bin/chromium';
export const TIMEOUT_MS = 20000;

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A fresh profile of chromium; `close()` also deletes the profile. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'feige-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(TIMEOUT_MS);
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

const goes = [];
const waiting = new Map();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [word, name] = line.trim().split(/\s+/);
  if (word !== 'GO') return;
  const resolve = waiting.get(name);
  if (resolve) {
    waiting.delete(name);
    resolve();
  } else {
    goes.push(name);
  }
});

/** Tells the Rust side that step `name` is done, with `data`. */
export function step(name, data = {}) {
  process.stdout.write(`STEP ${name} ${JSON.stringify(data)}\n`);
}

/** Waits for the Rust side's `GO <name>`. */
export function go(name) {
  const i = goes.indexOf(name);
  if (i >= 0) {
    goes.splice(i, 1);
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    waiting.set(name, resolve);
    setTimeout(() => reject(new Error(`no GO ${name} from the test within 60 s`)), 60000);
  });
}

/** Waits until the element `selector` of `page` contains `text`. */
export async function waitText(page, selector, text) {
  try {
    await page.waitForFunction(([sel, t]) => {
      const node = document.querySelector(sel);
      return Boolean(node && node.textContent.includes(t));
    }, [selector, text], { timeout: TIMEOUT_MS });
  } catch {
    const seen = await page.locator(selector).textContent().catch(() => '(missing)');
    throw new Error(`${page.url()}: ${selector} never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(seen)}`);
  }
}

/** The screenshot directory, created. */
export function shots(dir) {
  mkdirSync(dir, { recursive: true });
  return (name) => join(dir, name);
}
