// board.js: the demo page's room board. Subscribes to channel `rooms` with herald.js (an
// object keyed by room name, each {"busy": bool, "by": string, "until": string}), draws one
// card per room, shows the connection state and a log of recent events.
// Page options in the URL: ?transport=poll|sse (default auto), ?probe=SECONDS (how often a
// polling page tries to stream again; default 30).
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const board = $('board'), log = $('log'), conn = $('conn');
  const cards = new Map(); // room name -> its card element
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const text = (v) => (typeof v === 'string' ? v : v == null ? '' : String(v));

  function el(tag, className, content) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (content !== undefined) e.textContent = content;
    return e;
  }

  // ------------------------------------------------------------------ log --

  function note(kind, message) {
    const item = el('li', 'log-' + kind);
    const time = new Date().toLocaleTimeString([], { hour12: false });
    item.append(el('time', '', time), el('span', 'kind', kind), el('span', 'msg', message));
    log.prepend(item);
    while (log.children.length > 12) log.lastChild.remove();
  }

  // What a delta did to one room, in words.
  function describe(name, patch, room) {
    if (patch === null) return name + ' removed';
    if (!isObject(room)) return name + ' changed';
    if (room.busy) return name + ' booked by ' + (text(room.by) || 'someone') + (room.until ? ' until ' + text(room.until) : '');
    return name + ' is free';
  }

  // ---------------------------------------------------------------- board --

  function newCard(name) {
    const card = el('article', 'room');
    card.dataset.room = name;
    const head = el('div', 'room-head');
    head.append(el('h3', 'name', name), el('span', 'badge'));
    card.append(head, el('p', 'who'), el('p', 'until'));
    return card;
  }

  function fill(card, room) {
    const busy = isObject(room) && room.busy === true;
    card.dataset.busy = String(busy);
    card.classList.toggle('busy', busy);
    card.querySelector('.badge').textContent = busy ? 'Busy' : 'Free';
    card.querySelector('.who').textContent = busy ? text(room.by) || 'someone' : 'Available';
    card.querySelector('.until').textContent = busy && room.until ? 'until ' + text(room.until) : '';
  }

  function flash(card) {
    card.classList.remove('flash');
    void card.offsetWidth; // restart the animation
    card.classList.add('flash');
  }

  function render(state, change) {
    const rooms = isObject(state) ? state : {};
    const names = Object.keys(rooms).sort((a, b) => a.localeCompare(b));
    for (const [name, card] of cards) {
      if (!(name in rooms)) { card.remove(); cards.delete(name); }
    }
    names.forEach((name, i) => {
      let card = cards.get(name);
      const isNew = !card;
      if (isNew) cards.set(name, (card = newCard(name)));
      fill(card, rooms[name]);
      if (board.children[i] !== card) board.insertBefore(card, board.children[i] || null);
      if (change.type === 'delta' && isObject(change.patch) && name in change.patch) flash(card);
    });
    const free = names.filter((n) => !(isObject(rooms[n]) && rooms[n].busy === true)).length;
    $('summary').textContent = state === null ? 'waiting for the board…'
      : free + ' of ' + names.length + ' rooms free';
    $('empty').hidden = names.length > 0 || state === null;
    $('last-id').textContent = change.id ? 'last event ' + change.id : 'no events yet';

    if (change.type === 'init') note('init', 'Board received: ' + names.length + ' rooms');
    else if (change.type === 'restore') note('init', 'Board kept from before the reload, at ' + change.id);
    else if (isObject(change.patch)) {
      for (const name of Object.keys(change.patch)) note('delta', describe(name, change.patch[name], rooms[name]));
    }
  }

  // ----------------------------------------------------------- connection --

  let countdown = null, transport = '';
  function showStatus(status) {
    clearInterval(countdown);
    if (transport && status.transport !== transport) {
      note('conn', status.transport === 'poll' ? 'Streaming keeps failing: switching to long polling'
        : 'Streaming works again: switched back from long polling');
    }
    transport = status.transport;
    conn.dataset.state = status.state;
    conn.dataset.transport = status.transport;
    conn.dataset.connects = String(status.connects);
    const label = $('conn-text');
    if (status.state === 'live') {
      label.textContent = status.transport === 'poll' ? 'Live · long polling' : 'Live';
      const how = status.transport === 'poll' ? 'long polling' : 'streaming';
      note('conn', 'Connected, ' + how + (status.resumedFrom ? ', resumed after ' + status.resumedFrom : ''));
    } else if (status.state === 'reconnecting') {
      const until = Date.now() + status.retryIn;
      const tick = () => {
        label.textContent = 'Reconnecting in ' + Math.max(0, Math.ceil((until - Date.now()) / 1000)) + ' s…';
      };
      tick();
      countdown = setInterval(tick, 250);
      const what = status.connects ? 'Connection lost' : 'Could not connect';
      note('conn', what + '; retrying in ' + (status.retryIn / 1000).toFixed(1) + ' s');
    } else {
      label.textContent = status.state === 'closed' ? 'Closed' : 'Connecting…';
    }
  }

  const params = new URLSearchParams(location.search);
  const probe = Number(params.get('probe'));
  window.roomsFeed = Herald.subscribe('rooms', {
    transport: ['auto', 'sse', 'poll'].includes(params.get('transport')) ? params.get('transport') : 'auto',
    probeMs: probe > 0 ? probe * 1000 : undefined,
    onState: render,
    onStatus: showStatus,
  });
})();
