// The WebSocket client of the pages: requests {"seq","cmd","data"} answered by
// {"seq","cmd","response":{"code","codeMsg","data"}}, and pushes
// {"cmd":"push","response":{"data":{"type",...}}} (docs/web.md).

const HEARTBEAT_MS = 30000;
const TIMEOUT_MS = 15000;

/** A request the server refused: `code` is its error code (e.g. "NOT_IN_ROOM"). */
export class CallError extends Error {
  constructor(code, message) {
    super(message ? `${code}: ${message}` : String(code));
    this.code = code;
  }
}

/** One connection to `/ws`, reopened after a drop unless stopped. */
export class Socket {
  /** `onPush(data)` gets each push's data; `onState(state)` "connecting", "open",
   * "closed" (with a retry pending) or "stopped". */
  constructor(onPush, onState) {
    this.onPush = onPush;
    this.onState = onState;
    this.pending = new Map();
    this.nextSeq = 1;
    this.retryMs = 500;
    this.stopped = true;
    this.ws = null;
    this.timer = null;
    this.heartbeatMs = HEARTBEAT_MS;
  }

  /** Sends a heartbeat every half `ms` (the server's `heartbeat_ms`, from the login answer). */
  setHeartbeat(ms) {
    if (Number(ms) > 0) this.heartbeatMs = Number(ms);
    clearInterval(this.beat);
    this.beat = setInterval(() => this.call('heartbeat', {}).catch(() => {}),
      Math.max(1000, this.heartbeatMs / 2));
  }

  /** Opens the connection (and keeps it open until `stop`). */
  start() {
    this.stopped = false;
    this.open();
  }

  /** Closes the connection and stops reconnecting. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
    this.onState('stopped');
  }

  open() {
    clearTimeout(this.timer);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    this.onState('connecting');
    ws.addEventListener('open', () => {
      this.retryMs = 500;
      this.onState('open');
    });
    ws.addEventListener('message', (ev) => this.receive(ev.data));
    ws.addEventListener('close', () => {
      clearInterval(this.beat);
      if (this.ws !== ws) return;
      this.ws = null;
      for (const { reject } of this.pending.values()) {
        reject(new CallError('DISCONNECTED', 'the connection was lost'));
      }
      this.pending.clear();
      if (this.stopped) return;
      this.onState('closed');
      this.timer = setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 8000);
    });
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    const response = frame.response || {};
    if (frame.cmd === 'push') {
      if (response.data) this.onPush(response.data);
      return;
    }
    const waiter = this.pending.get(String(frame.seq));
    if (!waiter) return;
    this.pending.delete(String(frame.seq));
    clearTimeout(waiter.timer);
    if (response.code === 200) {
      waiter.resolve(response.data || {});
    } else {
      // codeMsg is "ERROR_CODE: the server's text".
      const text = String(response.codeMsg || response.code);
      const colon = text.indexOf(': ');
      waiter.reject(colon > 0 ? new CallError(text.slice(0, colon), text.slice(colon + 2))
        : new CallError(text, ''));
    }
  }

  /** Sends `cmd` with `data`; resolves with the answer's data, rejects with a CallError. */
  call(cmd, data = {}) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new CallError('DISCONNECTED', 'not connected'));
        return;
      }
      const seq = `${Date.now()}-${this.nextSeq++}`;
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new CallError('TIMEOUT', `${cmd} got no answer`));
      }, TIMEOUT_MS);
      this.pending.set(seq, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ seq, cmd, data }));
    });
  }
}
