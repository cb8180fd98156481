// The 1:1 side of the room chat page: the conversation list with unread counts, one open
// conversation (history, live messages, send), read positions and delivery acks.
import { $, el, fill, show, say } from './dom.js';

const REFRESH_DELAY_MS = 150;

/** The open 1:1 (or group) conversation and the conversation list. */
export class Direct {
  constructor(app) {
    this.app = app;
    this.reset();
    $('dm-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.send();
    });
    $('dm-friend').addEventListener('click', () => this.befriend());
  }

  /** Forgets the open conversation (after a logout). */
  reset() {
    this.peer = null;
    this.conv = null;
    this.shown = new Set();
    this.refreshTimer = null;
    fill($('dm-log'));
    fill($('convs'));
    $('dm-title').textContent = 'Click a name to chat 1:1';
    this.enable(false);
  }

  enable(on) {
    $('dm-input').disabled = !on;
    $('dm-send').disabled = !on;
    $('dm-friend').disabled = !on || !this.peer;
  }

  /** After a login (or a reconnect): what was missed, the list, the open conversation again. */
  async afterLogin() {
    try {
      // Page by page: each asks from the highest seq received per conversation.
      const positions = new Map();
      for (let more = true; more;) {
        const data = positions.size ? { positions: [...positions].map(
          ([conversation_id, seq]) => ({ conversation_id, seq })) } : {};
        const page = await this.app.sock.call('sync', data);
        for (const m of page.messages || []) {
          this.onMessage(m, false);
          positions.set(m.conversation_id, m.seq);
        }
        more = Boolean(page.has_more) && (page.messages || []).length > 0;
      }
    } catch (e) {
      this.app.notice(`Could not fetch missed messages: ${e.message}`, true);
    }
    if (this.peer || this.conv) await this.load();
    await this.refresh();
  }

  /** A message pushed (or synced): acked, shown when its conversation is open. */
  onMessage(m, refresh = true) {
    const me = this.app.me;
    this.app.sock.call('ack', {
      positions: [{ conversation_id: m.conversation_id, seq: m.seq }],
    }).catch(() => {});
    const direct = m.to_user && m.to_user !== '0';
    const peer = String(m.from_user) === me ? String(m.to_user) : String(m.from_user);
    const open = (this.conv && m.conversation_id === this.conv)
      || (direct && this.peer && peer === this.peer);
    if (open) {
      this.conv = m.conversation_id;
      this.show(m);
      this.markRead(m.seq);
    }
    if (refresh) this.refreshSoon();
  }

  show(m) {
    if (this.shown.has(m.message_id)) return;
    this.shown.add(m.message_id);
    const text = m.kind === 'recalled' ? '(recalled)' : m.text;
    const cls = m.kind === 'system' || m.kind === 'recalled' ? 'system' : '';
    this.app.append($('dm-log'), this.app.line(m.from_user, text, m.sent_at, cls));
  }

  /** Opens the 1:1 chat with user `peer` (a decimal id). */
  async open(peer, conv = null) {
    this.peer = peer;
    this.conv = conv;
    await this.load();
    await this.refresh();
  }

  /** Opens a conversation without a peer user (a group). */
  async openConversation(conv, label) {
    this.peer = null;
    this.conv = conv;
    this.label = label;
    await this.load();
    await this.refresh();
  }

  async load() {
    const title = this.peer ? `Chat with ${this.app.name(this.peer)}` : this.label;
    $('dm-title').textContent = title;
    say($('dm-error'), '');
    this.shown = new Set();
    fill($('dm-log'));
    this.enable(true);
    const query = this.peer ? { peer_user: this.peer } : { conversation_id: this.conv };
    try {
      const page = await this.app.sock.call('history', { ...query, limit: 50 });
      const messages = page.messages.slice().reverse();
      if (messages.length) this.conv = messages[0].conversation_id;
      messages.forEach((m) => this.show(m));
      if (messages.length) await this.markRead(messages[messages.length - 1].seq);
    } catch (e) {
      if (e.code !== 'NOT_FOUND') say($('dm-error'), `History: ${e.message}`, true);
    }
  }

  async markRead(seq) {
    if (!this.conv) return;
    try {
      await this.app.sock.call('mark_read', { conversation_id: this.conv, seq });
    } catch {
      // Not a member any more, or disconnected: the list shows the server's count.
    }
  }

  async send() {
    const input = $('dm-input');
    const text = input.value;
    if (!text.trim() || (!this.peer && !this.conv)) return;
    const target = this.peer ? { to_user: this.peer } : { conversation_id: this.conv };
    try {
      const sent = await this.app.sock.call('send_message', { ...target, text });
      input.value = '';
      say($('dm-error'), '');
      this.conv = sent.conversation_id;
      this.show({ ...sent, from_user: this.app.me, text, kind: 'text' });
      this.refreshSoon();
    } catch (e) {
      const hint = e.code === 'NOT_FRIENDS' ? ' (send a friend request with “Add friend”)' : '';
      say($('dm-error'), `Not sent: ${e.message}${hint}`, true);
    }
  }

  async befriend() {
    if (!this.peer) return;
    try {
      const r = await this.app.sock.call('friend_request', { to_user: this.peer });
      say($('dm-error'), r.became_friends ? 'You are friends now.' : 'Friend request sent.');
    } catch (e) {
      say($('dm-error'), `Friend request: ${e.message}`, true);
    }
  }

  refreshSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_DELAY_MS);
  }

  /** Redraws the conversation list with its unread counts. */
  async refresh() {
    if (!this.app.me) return;
    let page;
    try {
      page = await this.app.sock.call('conversations', { limit: 100 });
    } catch {
      return;
    }
    fill($('convs'), ...page.conversations.map((c) => {
      if (c.peer) this.app.learn(c.peer);
      const peer = c.peer ? String(c.peer.user_id) : null;
      const label = peer ? this.app.name(peer) : (c.group && c.group.name) || `group ${c.conversation_id}`;
      const active = c.conversation_id === this.conv || (peer && peer === this.peer);
      const li = el('li', {
        className: active ? 'active' : '',
        dataset: { conv: c.conversation_id, user: peer || '' },
        onclick: () => (peer ? this.open(peer, c.conversation_id)
          : this.openConversation(c.conversation_id, label)),
      }, el('span', {}, label));
      const unread = Number(c.unread) || 0;
      if (unread > 0) li.append(el('span', { className: 'badge' }, String(unread)));
      return li;
    }));
    show($('convs'), true);
  }
}
