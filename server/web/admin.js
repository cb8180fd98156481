// The admin page (/admin): the token in sessionStorage, then the status (refreshed), the
// connections with a kick button, the users with disable/enable/approve, and a notice form,
// all over the admin JSON API (docs/admin.md) with `Authorization: Bearer <token>`.
import { $, el, fill, show, say } from './dom.js';

const TOKEN_KEY = 'feige.admin';
const REFRESH_MS = 3000;
const PAGE = 20;

let conns = 0;
let users = 0;
let timer = null;

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the admin API; resolves with `data`, rejects with an ApiError. */
async function api(path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY) || '';
  const init = { headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `the server is unreachable (${e.message})`);
  }
  let json = {};
  try {
    json = await res.json();
  } catch {
    // A body that is not JSON: the status says enough.
  }
  if (!res.ok || (json.code !== undefined && json.code !== 200)) {
    throw new ApiError(res.status, json.msg || `HTTP ${res.status}`);
  }
  return json.data || {};
}

function message(text, isError = false) {
  const p = $('message');
  say(p, text, isError);
  p.classList.add('notice');
  show(p, Boolean(text));
}

/** Runs `fn`; a 401/403 sends the admin back to the token form. */
async function guarded(fn) {
  try {
    await fn();
    return true;
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY);
      showAuth(`Refused: ${e.message}`);
    } else {
      message(e.message, true);
    }
    return false;
  }
}

function showAuth(error) {
  clearInterval(timer);
  show($('console'), false);
  show($('forget'), false);
  show($('auth'), true);
  say($('auth-error'), error, true);
}

function since(ms) {
  const s = Math.max(0, Math.round((Date.now() - Number(ms)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

function uptime(s) {
  const n = Number(s) || 0;
  const d = Math.floor(n / 86400);
  const h = Math.floor((n % 86400) / 3600);
  const m = Math.floor((n % 3600) / 60);
  return `${d ? `${d} d ` : ''}${h} h ${m} min ${n % 60} s`;
}

async function status() {
  const s = await api('/admin/api/status');
  const c = s.connections || {};
  const queues = Object.entries(s.queues || {}).map(([k, v]) => `${k} ${v}`).join(', ');
  const rows = [
    ['version', s.version], ['uptime', uptime(s.uptime_s)],
    ['connections', `${c.tcp ?? 0} TCP, ${c.ws ?? 0} WebSocket`],
    ['users online', s.users_online], ['messages/s', s.messages_per_s],
    ['queues', queues || '—'], ['database', `${s.db_bytes ?? 0} bytes`],
  ];
  fill($('status'), ...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { dataset: { key: k } }, String(v ?? '—'))]));
  $('updated').textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
}

async function connections() {
  const d = await api(`/admin/api/connections?offset=${conns}&limit=${PAGE}`);
  $('conn-total').textContent = String(d.total);
  $('conn-page').textContent = `${d.total ? conns + 1 : 0}–${conns + d.connections.length}`;
  fill($('connections'), ...d.connections.map((c) => el('tr', { dataset: { conn: String(c.conn_id), user: c.username || '' } },
    el('td', {}, `${c.username || '—'} (${c.user_id ?? '—'})`), el('td', {}, c.device || ''),
    el('td', {}, c.addr || ''), el('td', {}, since(c.since_ms)), el('td', {}, c.transport || ''),
    el('td', {}, el('button', { type: 'button', className: 'kick', onclick: () => kick(c) }, 'Kick')))));
}

async function kick(c) {
  await guarded(async () => {
    const r = await api('/admin/api/kick', { conn_id: c.conn_id, reason: 'disconnected by an admin' });
    message(`Kicked ${r.kicked} connection(s) of ${c.username || c.conn_id}.`);
    await connections();
  });
}

async function userList() {
  const q = encodeURIComponent($('user-query').value.trim());
  const d = await api(`/admin/api/users?query=${q}&offset=${users}&limit=${PAGE}`);
  $('user-total').textContent = String(d.total);
  $('user-page').textContent = `${d.total ? users + 1 : 0}–${users + d.users.length}`;
  fill($('users'), ...d.users.map((u) => {
    const state = u.pending ? 'pending approval' : (u.disabled ? 'disabled' : 'active');
    const act = (what, label) => el('button', { type: 'button', className: what,
      onclick: () => userAction(what, u) }, label);
    return el('tr', { dataset: { user: String(u.user_id) } },
      el('td', {}, String(u.user_id)), el('td', {}, u.username), el('td', {}, u.nickname || ''),
      el('td', {}, state), el('td', {}, new Date(Number(u.created_at_ms)).toLocaleString()),
      el('td', {}, u.disabled ? act('enable', 'Enable') : act('disable', 'Disable'),
        u.pending ? act('approve', 'Approve') : null));
  }));
}

async function userAction(what, u) {
  await guarded(async () => {
    await api(`/admin/api/users/${what}`, { user_id: u.user_id });
    message(`${u.username}: ${what}d.`);
    await userList();
  });
}

async function refresh() {
  await guarded(async () => {
    await status();
    await connections();
  });
}

async function open() {
  show($('auth'), false);
  const ok = await guarded(async () => {
    await status();
    await connections();
    await userList();
  });
  if (!ok) return;
  show($('console'), true);
  show($('forget'), true);
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

function init() {
  $('auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    open();
  });
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showAuth('');
  });
  $('conn-prev').addEventListener('click', () => { conns = Math.max(0, conns - PAGE); guarded(connections); });
  $('conn-next').addEventListener('click', () => { conns += PAGE; guarded(connections); });
  $('user-prev').addEventListener('click', () => { users = Math.max(0, users - PAGE); guarded(userList); });
  $('user-next').addEventListener('click', () => { users += PAGE; guarded(userList); });
  $('user-search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    users = 0;
    guarded(userList);
  });
  $('notice-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const to = $('notice-to').value;
    const body = { to, title: $('notice-title').value, body: $('notice-body').value };
    if (to !== 'all') body.id = $('notice-id').value.trim();
    guarded(async () => {
      await api('/admin/api/notices', body);
      message(`Notice sent to ${to === 'all' ? 'everyone' : `${to} ${body.id}`}.`);
      $('notice-title').value = '';
      $('notice-body').value = '';
    });
  });
  if (sessionStorage.getItem(TOKEN_KEY)) open();
  else showAuth('');
}

init();
