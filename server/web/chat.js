// The room chat page (/home/index?appId=101): login or register, the room's users, the room's
// chat; the 1:1 side is in chat-dm.js. The session token is kept in sessionStorage so a
// reconnect (or a reload) logs in again without the password.
import { Socket } from './ws.js';
import { $, el, fill, show, clock, say } from './dom.js';
import { Direct } from './chat-dm.js';

const TOKEN_KEY = 'feige.token';
const MEMBERS_REFRESH_MS = 5000;
const appId = new URLSearchParams(location.search).get('appId') || '';
const room = /^[1-9][0-9]{0,18}$/.test(appId) ? appId : null;

const app = {
  me: null,
  names: new Map(),
  kicked: false,
  room,
};

/** Remembers a user's display name. */
app.learn = (user) => {
  if (!user || !user.user_id) return;
  const nick = user.nickname || user.username || `user ${user.user_id}`;
  const name = user.username && nick !== user.username ? `${nick} (${user.username})` : nick;
  app.names.set(String(user.user_id), name);
};

/** The display name of user `id`, or "user <id>". */
app.name = (id) => app.names.get(String(id)) || `user ${id}`;

/** A span with user `id`'s name, filled in when it has to be looked up first. */
app.nameSpan = (id) => {
  const span = el('span', { className: 'who' }, app.name(id));
  if (!app.names.has(String(id)) && app.sock) {
    app.sock.call('get_user', { user: String(id) }).then((user) => {
      app.learn(user);
      span.textContent = app.name(id);
    }).catch(() => {});
  }
  return span;
};

/** A dismissable line above the page. */
app.notice = (text, isError = false, ...extra) => {
  const box = $('notices');
  const line = el('div', { className: isError ? 'notice error' : 'notice' }, text, ' ', ...extra,
    ' ', el('button', { type: 'button', onclick: () => line.remove() }, '×'));
  box.append(line);
  while (box.children.length > 5) box.firstElementChild.remove();
  return line;
};

/** One line of a message log. */
app.line = (fromUser, text, sentAt, extraClass = '') => {
  const mine = String(fromUser) === String(app.me);
  return el('div', { className: `msg ${mine ? 'mine' : ''} ${extraClass}`.trim(),
    dataset: { from: String(fromUser) } },
  el('span', { className: 'time' }, clock(sentAt)), app.nameSpan(fromUser), text);
};

/** Appends `node` to the log `log`, scrolled to the end. */
app.append = (log, node) => {
  log.append(node);
  log.scrollTop = log.scrollHeight;
};

const direct = new Direct(app);

function state(text) {
  $('conn-state').textContent = text;
}

function onState(s) {
  if (s === 'connecting') state('connecting…');
  if (s === 'closed') state('disconnected, retrying…');
  if (s === 'stopped') state(app.kicked ? 'kicked' : 'offline');
  if (s !== 'open') return;
  state('connected');
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    app.sock.call('login', { token }).then(enter).catch((e) => {
      if (e.code === 'DISCONNECTED' || e.code === 'TIMEOUT') return;
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(`Please log in again (${e.message}).`);
    });
  } else {
    showLogin('');
  }
}

function onPush(p) {
  switch (p.type) {
    case 'room_message':
      if (String(p.room) === room) {
        app.append($('room-log'), app.line(p.from_user, p.text, p.sent_at));
        if (!app.names.has(String(p.from_user))) refreshMembers();
      }
      break;
    case 'message':
      direct.onMessage(p);
      break;
    case 'read_position':
      direct.refresh();
      break;
    case 'kicked':
      // Not logged in in time: the socket reconnects by itself, and the form stays.
      if (!app.me && p.code === 'LOGIN_TIMEOUT') break;
      app.kicked = true;
      if (p.code === 'INVALID_TOKEN') sessionStorage.removeItem(TOKEN_KEY);
      app.sock.stop();
      app.notice(`Disconnected by the server: ${p.reason || 'no reason given'} (${p.code})`, true);
      show($('reconnect'), true);
      break;
    case 'friend_request':
      if (String(p.from && p.from.user_id) !== String(app.me)) friendRequest(p);
      break;
    case 'notification':
      notification(p);
      break;
    default:
      break;
  }
}

function friendRequest(p) {
  app.learn(p.from);
  const line = app.notice(`${app.name(p.from.user_id)} asks to be friends: ${p.message || ''}`,
    false, el('button', {
      type: 'button',
      onclick: () => app.sock.call('friend_respond', { request_id: p.request_id, accept: true })
        .then(() => { line.remove(); app.notice(`You and ${app.name(p.from.user_id)} are friends now.`); })
        .catch((e) => app.notice(`Could not accept: ${e.message}`, true)),
    }, 'Accept'));
}

/** The notification lines shown, by notification id. */
const notes = new Map();

/** A system notification (an admin's notice) until it is marked read. */
function notification(n) {
  if (notes.has(n.id) && notes.get(n.id).isConnected) return;
  const line = app.notice(`Notice: ${n.title ? `${n.title} — ` : ''}${n.body}`, false,
    el('button', {
      type: 'button',
      className: 'mark-read',
      onclick: () => app.sock.call('notification_read', { id: n.id })
        .then(() => line.remove())
        .catch((e) => app.notice(`Could not mark it read: ${e.message}`, true)),
    }, 'Mark read'));
  notes.set(n.id, line);
}

function showLogin(message) {
  app.me = null;
  show($('chat'), false);
  show($('logout'), false);
  show($('login'), true);
  $('me').textContent = '';
  say($('login-error'), message, true);
}

async function enter(session) {
  app.me = String(session.user_id);
  app.sock.setHeartbeat(session.heartbeat_ms);
  sessionStorage.setItem(TOKEN_KEY, session.token);
  if (session.profile) app.learn(session.profile);
  $('me').textContent = app.name(app.me);
  show($('login'), false);
  show($('chat'), true);
  show($('logout'), true);
  try {
    const joined = await app.sock.call('room_join', { room });
    $('room-count').textContent = String(joined.member_count);
    await refreshMembers();
    const history = await app.sock.call('room_history', { room, limit: 50 });
    const log = $('room-log');
    fill(log, ...history.messages.slice().reverse()
      .map((m) => app.line(m.from_user, m.text, m.sent_at)));
    log.scrollTop = log.scrollHeight;
    say($('room-error'), '');
  } catch (e) {
    say($('room-error'), `Could not join room ${room}: ${e.message}`, true);
  }
  await direct.afterLogin();
  try {
    const list = await app.sock.call('notifications', { limit: 50 });
    list.notifications.filter((n) => !n.read).forEach(notification);
  } catch {
    // Older servers have no notifications; nothing to show then.
  }
}

async function refreshMembers() {
  if (!app.me || !app.sock) return;
  try {
    const r = await app.sock.call('room_members', { room, limit: 1000 });
    $('room-count').textContent = String(r.count);
    r.members.forEach(app.learn);
    fill($('room-users'), ...r.members.map((u) => {
      const self = String(u.user_id) === app.me;
      return el('li', { dataset: { user: String(u.user_id) }, title: self ? 'you' : 'chat 1:1',
        onclick: () => { if (!self) direct.open(String(u.user_id)); } },
      el('span', {}, app.name(u.user_id), self ? ' (you)' : ''));
    }));
  } catch {
    // The next refresh tries again; a lost connection is shown in the header.
  }
}

async function credentials(register) {
  const username = $('username').value.trim();
  const password = $('password').value;
  const nickname = $('nickname').value.trim();
  say($('login-error'), '');
  try {
    if (register) {
      const data = { username, password };
      if (nickname) data.nickname = nickname;
      const registered = await app.sock.call('register', data);
      if (registered.pending) {
        say($('login-error'), 'Registered: your account waits for an admin\'s approval.');
        return;
      }
    }
    await enter(await app.sock.call('login', { username, password }));
  } catch (e) {
    say($('login-error'), `${register ? 'Registration' : 'Login'} failed: ${e.message}`, true);
  }
}

function init() {
  if (!room) {
    document.body.replaceChildren(el('p', { className: 'notice error' },
      'This page needs a room: /home/index?appId=101'));
    return;
  }
  document.title = `Feige room ${room}`;
  $('title').textContent = `Feige room ${room}`;
  $('room-title').textContent = `Room ${room}`;
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    credentials(false);
  });
  $('register-button').addEventListener('click', () => credentials(true));
  $('room-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('room-input');
    const text = input.value;
    if (!text.trim()) return;
    try {
      const sent = await app.sock.call('room_send', { room, text });
      input.value = '';
      say($('room-error'), '');
      app.append($('room-log'), app.line(app.me, text, sent.sent_at));
    } catch (e) {
      say($('room-error'), `Not sent: ${e.message}`, true);
    }
  });
  $('logout').addEventListener('click', async () => {
    try {
      await app.sock.call('logout', {});
    } catch {
      // Logged out locally either way: the token is forgotten below.
    }
    sessionStorage.removeItem(TOKEN_KEY);
    direct.reset();
    showLogin('');
    if (app.sock.stopped) {
      // Kicked before: connect again for the next login.
      app.kicked = false;
      show($('reconnect'), false);
      app.sock.start();
    }
  });
  $('reconnect').addEventListener('click', () => {
    app.kicked = false;
    show($('reconnect'), false);
    app.sock.start();
  });
  app.sock = new Socket(onPush, onState);
  app.sock.start();
  setInterval(refreshMembers, MEMBERS_REFRESH_MS);
}

init();
