/* herald.js: browser client for one Herald channel: keeps its state current over
 * Server-Sent Events, or long polling while streaming fails. No build step:
 * <script src="/herald.js"></script> defines window.Herald.
 *
 * feed = Herald.subscribe(channel, {
 *   onState(state, change),  // change {type, id, patch}; type 'restore' (kept from before
 *                            // a reload), 'init' (whole state) or 'delta' (patch applied)
 *   onEvent(name, data, id), // other events (data: parsed JSON, else the text)
 *   onStatus(status),        // {state: connecting|live|reconnecting|closed, transport:
 * })                         //  sse|poll, retryIn: ms, connects: count, resumedFrom: id}
 * feed.state (updated in place), feed.lastEventId, feed.status, feed.close()
 * Herald.mergePatch(target, patch): RFC 7386, as applied to deltas
 *
 * Options (default): base ('') URL prefix; transport ('auto': stream, long-poll after
 * maxFailures (3) streams in a row fail before an event, try a stream again every probeMs
 * (30000); or 'sse', 'poll'); retryMs (2000) first reconnect delay, doubled per failure up
 * to maxRetryMs (30000), jittered x0.5-1.5; storage (sessionStorage, or null) keeps the
 * last id and state, so a reload shows the state at once and resumes; events ([]) more
 * SSE event names to receive; token (null) for private channels: a function returning a
 * subscriber token (or a promise of one), called before every connection; when a stream
 * ends with `token-expired` a fresh token resumes after the last id at once (EventSource
 * alone would reconnect with the expired token and give up on its 401).
 */
(function (global) {
'use strict';

const DEFAULTS = { base: '', transport: 'auto', maxFailures: 3, probeMs: 30000, retryMs: 2000,
  maxRetryMs: 30000, storage: null, events: [], token: null, onState() {}, onEvent() {}, onStatus() {} };
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const jitter = (ms) => Math.round(ms * (0.5 + Math.random()));
const parse = (text) => { try { return JSON.parse(text); } catch (e) { return text; } };

function mergePatch(target, patch) {
  if (!isObject(patch)) return patch;
  const out = isObject(target) ? target : {};
  for (const k of Object.keys(patch)) {
    if (k === '__proto__') continue; // would reach Object.prototype
    if (patch[k] === null) delete out[k];
    else out[k] = mergePatch(out[k], patch[k]);
  }
  return out;
}

// Whether id is at or before `last` ("<epoch>-<sequence>", same epoch): such an event is
// a duplicate (stream and poll may overlap while switching) and is dropped.
function seen(id, last) {
  const a = /^(\w+)-0*(\d+)$/.exec(id), b = /^(\w+)-0*(\d+)$/.exec(last);
  if (!a || !b || a[1] !== b[1]) return false;
  return a[2].length < b[2].length || (a[2].length === b[2].length && a[2] <= b[2]);
}

class Feed {
  constructor(channel, options) {
    this.o = Object.assign({}, DEFAULTS);
    try { this.o.storage = global.sessionStorage; } catch (e) { /* blocked */ }
    for (const [k, v] of Object.entries(options || {})) if (v !== undefined) this.o[k] = v;
    this.channel = channel;
    this.key = 'herald:' + this.o.base + '/' + channel;
    this.state = null;
    this.lastEventId = '';
    this.status = {};
    this.connects = 0; // connections that came up
    this.failures = 0; // streams in a row that ended before an event, or polls that failed
    this.mode = this.o.transport === 'poll' || !global.EventSource ? 'poll' : 'sse';
    this.save = this.save.bind(this);
    global.addEventListener('pagehide', this.save);
    Promise.resolve().then(() => { this.restore(); this.connect(); });
  }

  url(kind, id) {
    const q = [];
    if (id) q.push('lastEventId=' + encodeURIComponent(id));
    if (this.token) q.push('token=' + encodeURIComponent(this.token));
    return this.o.base + '/' + kind + '/' + encodeURIComponent(this.channel) + (q.length ? '?' + q.join('&') : '');
  }

  setStatus(state, retryIn) {
    this.status = { state, transport: this.mode, retryIn: retryIn || 0, connects: this.connects,
      resumedFrom: this.resumedFrom || '' };
    this.o.onStatus(this.status);
  }

  handle(type, text, id) {
    if (this.closed || (id && seen(id, this.lastEventId))) return;
    const data = parse(text);
    if (id) this.lastEventId = id;
    if (type !== 'init' && type !== 'delta') this.o.onEvent(type, data, id);
    else {
      this.state = type === 'init' ? data : mergePatch(this.state, data);
      this.o.onState(this.state, { type, id, patch: type === 'delta' ? data : undefined });
    }
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(this.save, 250);
  }

  save() { // when storage is full, the older copy stays: its id and state still match
    const kept = JSON.stringify({ id: this.lastEventId, state: this.state });
    try { if (this.lastEventId) this.o.storage.setItem(this.key, kept); } catch (e) { /* */ }
  }

  restore() {
    let kept = null;
    try { kept = JSON.parse(this.o.storage.getItem(this.key)); } catch (e) { /* none */ }
    if (!kept || typeof kept.id !== 'string' || !('state' in kept)) return;
    this.state = kept.state;
    this.lastEventId = kept.id;
    this.o.onState(this.state, { type: 'restore', id: kept.id });
  }

  async connect() {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    if (!this.connects) this.setStatus('connecting');
    if (this.o.token) {
      try { this.token = await this.o.token(); } catch (e) { this.failures++; return this.retry(); }
      if (this.closed) return;
    }
    if (this.mode === 'poll') this.poll();
    else this.es = this.stream(false);
  }

  retry() {
    const ms = jitter(Math.min(this.o.maxRetryMs, this.o.retryMs * 2 ** Math.max(0, this.failures - 1)));
    this.setStatus('reconnecting', ms);
    this.retryTimer = setTimeout(() => this.connect(), ms);
  }

  up(from) { // a stream opened, or a long poll was answered or is held by a worker
    this.connects++;
    this.resumedFrom = from;
    this.setStatus('live');
  }

  // A new EventSource resuming after the last id; a probe (while polling) starts afresh:
  // its first event, init, proves streaming works.
  stream(probe) {
    const from = probe ? '' : this.lastEventId;
    const es = new EventSource(this.url('stream', from));
    let delivered = false;
    // Without an id, init comes at once: none in 10 s means a proxy holds the stream back.
    const silent = from ? 0 : setTimeout(() => es.onerror(), 10000);
    const onMessage = (e) => {
      clearTimeout(silent);
      if (!delivered && (delivered = true) && probe) this.promote(es);
      if (es === this.es) { this.failures = 0; this.handle(e.type, e.data, e.lastEventId); }
    };
    for (const name of ['init', 'delta', 'message'].concat(this.o.events)) es.addEventListener(name, onMessage);
    es.addEventListener('token-expired', () => { // a fresh token, resuming after the last id
      es.close();
      if (es === this.es && !this.closed) { this.es = null; this.connect(); }
    });
    es.onopen = () => { if (!probe) this.up(from); };
    es.onerror = () => {
      clearTimeout(silent);
      es.close();
      if (this.closed) return;
      if (es !== this.es) return probe && this.probeFailed();
      this.es = null;
      if (!delivered) this.failures++;
      if (this.o.transport !== 'auto' || this.failures < this.o.maxFailures) return this.retry();
      this.failures = 0;
      this.mode = 'poll';
      this.poll();
    };
    return es;
  }

  async poll() {
    if (this.closed || this.mode !== 'poll') return;
    const abort = this.pollAbort = new AbortController(), from = this.lastEventId;
    const timeout = setTimeout(() => abort.abort(), 40000); // workers answer within 25 s
    const held = setTimeout(() => this.pollUp(from), 1000); // a worker holds it: live
    this.probe();
    try {
      const reply = await fetch(this.url('poll', from), { signal: abort.signal, cache: 'no-store' });
      if (!reply.ok) throw new Error('HTTP ' + reply.status);
      const body = await reply.json();
      if (this.pollAbort !== abort || this.mode !== 'poll') return;
      this.pollUp(from);
      this.failures = 0;
      for (const e of body.events) if (typeof e.data === 'string') this.handle(e.event || 'message', e.data, e.id);
      const last = body.lastEventId;
      if (typeof last === 'string' && last && !seen(last, this.lastEventId)) this.lastEventId = last;
      setTimeout(() => this.poll(), 0);
    } catch (error) {
      if (this.closed || this.pollAbort !== abort || this.mode !== 'poll') return;
      this.polling = false;
      this.failures++;
      this.retry();
    } finally {
      clearTimeout(timeout);
      clearTimeout(held);
    }
  }

  pollUp(from) {
    if (this.polling || this.mode !== 'poll' || this.closed) return;
    this.polling = true;
    this.up(from);
  }

  // While polling in 'auto' mode: a probe stream every probeMs, one at a time.
  probe() {
    if (this.o.transport !== 'auto' || this.probeTimer || !global.EventSource) return;
    this.probeTimer = setTimeout(() => {
      if (this.closed || this.mode !== 'poll') this.probeTimer = null;
      else this.probing = this.stream(true);
    }, jitter(this.o.probeMs));
  }

  probeFailed() {
    this.probing = this.probeTimer = null;
    this.probe();
  }

  promote(es) { // the probe delivered: streaming works again
    this.probing = this.probeTimer = null;
    if (this.closed || this.mode !== 'poll') return es.close();
    this.mode = 'sse';
    this.polling = false;
    this.failures = 0;
    clearTimeout(this.retryTimer);
    if (this.pollAbort) this.pollAbort.abort();
    this.es = es;
    this.up('');
  }

  close() {
    this.closed = true;
    for (const t of [this.retryTimer, this.probeTimer, this.saveTimer]) clearTimeout(t);
    for (const es of [this.es, this.probing]) if (es) es.close();
    if (this.pollAbort) this.pollAbort.abort();
    this.save();
    global.removeEventListener('pagehide', this.save);
    this.setStatus('closed');
  }
}

global.Herald = { subscribe: (channel, options) => new Feed(channel, options), mergePatch };
})(window);
