// Drives the room chat page as two users (ann, ben) and the admin page, in step with
// tests/browser.rs, which is the Rust-SDK user "rusty" in the same room.
// Usage: node pages.mjs <http host:port> <admin token> <screenshot dir>
import { launch, step, go, waitText, shots } from './harness.mjs';

const [addr, adminToken, shotDir] = process.argv.slice(2);
if (!addr || !adminToken || !shotDir) {
  console.error('usage: node pages.mjs <http host:port> <admin token> <screenshot dir>');
  process.exit(2);
}
const base = `http://${addr}`;
const shot = shots(shotDir);
const PASSWORD = 'password123';

async function register(page, username, nickname) {
  await page.goto(`${base}/home/index?appId=101`);
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await page.fill('#nickname', nickname);
  await page.click('#register-button');
  await page.locator('#chat').waitFor({ state: 'visible' });
}

/** The user ids of the room list by username. */
async function roomUsers(page) {
  return page.$$eval('#room-users li', (items) => Object.fromEntries(items.map((li) => {
    const m = li.textContent.match(/\(([^()]+)\)/);
    return [m ? m[1] : li.textContent, li.dataset.user];
  })));
}

async function main(pages) {
  const [ann, ben] = pages;
  await Promise.all([register(ann, 'ann', 'Ann'), register(ben, 'ben', 'Ben')]);
  await Promise.all([waitText(ann, '#room-count', '3'), waitText(ben, '#room-count', '3')]);
  await ann.reload();
  await waitText(ann, '#room-count', '3');
  const ids = await roomUsers(ann);
  step('joined', { ann: ids.ann, ben: ids.ben, rusty: ids.rusty });

  // A 1:1 message rusty sent before ben opened the chat: an unread count in ben's list.
  await go('early');
  await waitText(ben, `#convs li[data-user="${ids.rusty}"] .badge`, '1');

  // The room, both ways: ann writes, ben and rusty see it; rusty writes, both pages see it.
  await ann.fill('#room-input', 'hello room from ann');
  await ann.press('#room-input', 'Enter');
  await waitText(ben, '#room-log', 'hello room from ann');
  step('room');
  await go('room');
  await Promise.all([waitText(ann, '#room-log', 'hello browsers, rusty here'),
    waitText(ben, '#room-log', 'hello browsers, rusty here')]);

  // 1:1 at the same time: ann from the room's user list, ben from the conversation list.
  await Promise.all([
    (async () => {
      await ann.click(`#room-users li[data-user="${ids.rusty}"]`);
      await waitText(ann, '#dm-title', 'Rusty');
      await ann.fill('#dm-input', 'hi rusty, ann here');
      await ann.click('#dm-send');
      await waitText(ann, '#dm-log', 'hi rusty, ann here');
    })(),
    (async () => {
      await ben.click(`#convs li[data-user="${ids.rusty}"]`);
      await waitText(ben, '#dm-log', 'early word for ben');
      await ben.locator(`#convs li[data-user="${ids.rusty}"] .badge`).waitFor({ state: 'detached' });
      await ben.fill('#dm-input', 'hi rusty, ben here');
      await ben.click('#dm-send');
      await waitText(ben, '#dm-log', 'hi rusty, ben here');
    })(),
  ]);
  step('dm');
  await go('dm');
  await Promise.all([waitText(ann, '#dm-log', 'hello ann, from rust'),
    waitText(ben, '#dm-log', 'hello ben, from rust')]);
  await ann.screenshot({ path: shot('chat.png') });

  // The admin page: status, connections, kick ben; ben's page shows it.
  const admin = await ann.context().newPage();
  await admin.goto(`${base}/admin`);
  await admin.locator('#auth').waitFor({ state: 'visible' });
  await admin.fill('#token', adminToken);
  await admin.click('#auth-form button[type=submit]');
  await admin.locator('#console').waitFor({ state: 'visible' });
  await waitText(admin, '#status', '1 TCP, 2 WebSocket');
  await waitText(admin, '#users', 'ben');

  // A notice to everyone: both pages show it; ann marks it read.
  await admin.selectOption('#notice-to', 'all');
  await admin.fill('#notice-title', 'Maintenance');
  await admin.fill('#notice-body', 'tonight at 10');
  await admin.click('#notice-form button[type=submit]');
  await waitText(admin, '#message', 'Notice sent to everyone');
  await Promise.all([waitText(ann, '#notices', 'Notice: Maintenance — tonight at 10'),
    waitText(ben, '#notices', 'Notice: Maintenance — tonight at 10')]);
  await ann.click('#notices button.mark-read');
  await ann.locator('#notices button.mark-read').waitFor({ state: 'detached' });

  const row = admin.locator('#connections tr', { hasText: 'ben (' });
  await waitText(admin, `#connections tr[data-user="ben"]`, 'ws');
  await row.first().locator('button.kick').click();
  await waitText(admin, '#message', 'Kicked');
  await Promise.all([waitText(ben, '#notices', 'disconnected by an admin (KICKED_BY_ADMIN)'),
    waitText(ben, '#conn-state', 'kicked')]);
  await admin.screenshot({ path: shot('admin.png'), fullPage: true });
  await ben.screenshot({ path: shot('chat-kicked.png') });
  step('kicked');

  // Back in with the token: what rusty sent meanwhile arrives by sync.
  await go('away');
  await ben.click('#reconnect');
  await waitText(ben, '#conn-state', 'connected');
  await waitText(ben, '#dm-log', 'while you were away');
  await waitText(ben, '#room-count', '3');

  // Log out and in again by password: the room and the conversation list come back.
  await ann.click('#logout');
  await ann.locator('#login').waitFor({ state: 'visible' });
  await ann.fill('#username', 'ann');
  await ann.fill('#password', PASSWORD);
  await ann.click('#login-button');
  await ann.locator('#chat').waitFor({ state: 'visible' });
  await waitText(ann, '#room-count', '3');
  await waitText(ann, `#convs li[data-user="${ids.rusty}"]`, 'Rusty');
  step('resynced');
}

const { context, close } = await launch();
const pages = [context.pages()[0] || await context.newPage(), await context.newPage()];
for (const [i, p] of pages.entries()) {
  p.on('pageerror', (e) => console.error(`page ${i}: ${e.message}`));
}
let failed = null;
try {
  await main(pages);
} catch (e) {
  failed = e;
  for (const [i, p] of context.pages().entries()) {
    await p.screenshot({ path: shot(`failure-${i}.png`) }).catch(() => {});
  }
}
await close();
if (failed) {
  process.stdout.write(`FAIL ${String(failed.stack || failed).replace(/\n/g, ' | ')}\n`);
  process.exit(1);
}
step('done');
process.exit(0);
