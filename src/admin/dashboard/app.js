// @ts-check
// The Gatehouse dashboard: plain DOM, no framework, no inline code (the page's CSP allows this file only).
// Every datum comes from the admin API: GET /admin/events (a snapshot a second, read with fetch streaming so the
// Authorization header can be sent; EventSource cannot send it) and every action is a documented admin call.
'use strict';

const TOKEN_KEY = 'gatehouse.adminToken';
const HISTORY = 60;
const needsToken = document.querySelector('meta[name="gatehouse-auth"]')?.getAttribute('content') === 'token';

/** @type {Map<string, number[]>} requests/s per route over the last minute (one point per snapshot) */
const history = new Map();
/** @type {Map<string, { sig: string, el: HTMLElement, update: (u: any) => void }>} */
const upstreamCards = new Map();
/** @type {AbortController | null} */
let stream = null;
let retryMs = 1000;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * A new element with text (never HTML) and attributes.
 * @param {string} tag @param {Record<string, string> | null} [attrs] @param {...(Node | string | number | null | undefined)} kids
 */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const k of kids) if (k !== null && k !== undefined) el.append(typeof k === 'object' ? k : String(k));
  return el;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) ?? ''; }

/** @returns {Record<string, string>} */
function authHeaders() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** An admin API call; a problem+json answer becomes an Error with its detail. @param {string} method @param {string} path @param {unknown} [body] */
async function api(method, path, body) {
  const headers = { ...authHeaders(), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
  const res = await fetch(path, { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined, cache: 'no-store' });
  const data = await res.json().catch(() => null);
  if (res.status === 401) signOut('The token was refused.');
  if (!res.ok) throw new Error(data?.detail ?? `${method} ${path}: ${res.status}`);
  return data;
}

// ---------------------------------------------------------------- sign-in

function showLogin(/** @type {string} */ message) {
  stopStream();
  $('app').hidden = true;
  $('login').hidden = false;
  $('signout').hidden = true;
  $('login-error').textContent = message;
  setConn('signed out', '');
  /** @type {HTMLInputElement} */ ($('token')).focus();
}

function signOut(/** @type {string} */ message) {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault(); // nothing is submitted anywhere (form-action 'none'): the token stays in this tab
  const input = /** @type {HTMLInputElement} */ ($('token'));
  sessionStorage.setItem(TOKEN_KEY, input.value);
  input.value = '';
  start();
});
$('signout').addEventListener('click', () => signOut(''));

function start() {
  if (needsToken && !token()) return showLogin('');
  $('login').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = !needsToken;
  void connect();
}

// ---------------------------------------------------------------- the event stream

function setConn(/** @type {string} */ text, /** @type {string} */ cls) {
  const c = $('conn');
  c.textContent = text;
  c.className = `badge ${cls}`;
}

function stopStream() {
  stream?.abort();
  stream = null;
}

async function connect() {
  stopStream();
  const ctrl = new AbortController();
  stream = ctrl;
  try {
    const res = await fetch('/admin/events', { headers: { ...authHeaders(), accept: 'text/event-stream' }, signal: ctrl.signal, cache: 'no-store' });
    if (res.status === 401) return signOut('The token was refused.');
    if (!res.ok || res.body === null) throw new Error(`GET /admin/events: ${res.status}`);
    setConn('live', 'live');
    retryMs = 1000;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message';
        let data = '';
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data += line.slice(5).trimStart();
        }
        if (event === 'snapshot' && data) render(JSON.parse(data));
      }
    }
  } catch (e) {
    if (ctrl.signal.aborted) return;
  }
  if (stream !== ctrl) return;
  setConn('reconnecting…', 'down');
  setTimeout(() => { if (stream === ctrl) void connect(); }, retryMs);
  retryMs = Math.min(retryMs * 2, 15000);
}

// ---------------------------------------------------------------- rendering

const fmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const num = (/** @type {number | null | undefined} */ n) => (n === null || n === undefined ? '–' : fmt.format(n));
const msText = (/** @type {number | null} */ n) => (n === null ? '–' : `${fmt.format(n)} ms`);

/** @param {any} s a snapshot (GET /admin/events; its schema is in GET /openapi.json) */
function render(s) {
  renderSummary(s);
  renderTraffic(s.traffic);
  renderUpstreams(s.upstreams);
  renderRows($('routes'), s.routes, (r) => [r.name, r.methods, r.paths, r.conditions, r.upstream, r.rewrite, r.auth, r.policies, r.timeout], (r) => (r.enabled ? '' : 'muted'));
  renderUsage(s.usage);
  renderConfig(s.generation);
}

function tile(/** @type {string} */ label, /** @type {string} */ value, /** @type {string} */ cls = '') {
  return h('div', { class: 'tile' }, h('div', { class: 'label' }, label), h('div', { class: `value ${cls}` }, value));
}

function renderSummary(/** @type {any} */ s) {
  const w = { rps: 0, e4: 0, e5: 0, refused: 0 };
  for (const r of s.traffic.routes) { w.rps += r.rps; w.e4 += r.window.status4xx; w.e5 += r.window.status5xx; w.refused += r.window.rateLimited + r.window.quotaExceeded; }
  const ups = s.upstreams;
  const healthy = ups.filter((/** @type {any} */ u) => u.status === 'healthy').length;
  $('summary').replaceChildren(
    tile('requests/s', num(w.rps)),
    tile(`4xx (${s.traffic.windowSeconds}s)`, num(w.e4), w.e4 ? 'warn' : ''),
    tile(`5xx (${s.traffic.windowSeconds}s)`, num(w.e5), w.e5 ? 'bad' : ''),
    tile(`refused (${s.traffic.windowSeconds}s)`, num(w.refused), w.refused ? 'warn' : ''),
    tile('upstreams healthy', `${healthy} / ${ups.length}`, healthy === ups.length ? 'ok' : 'bad'),
    tile('routes', String(s.routes.length)),
  );
  const g = s.generation;
  $('generation').textContent = `generation ${g.id}${g.hash ? ` · ${g.hash.slice(0, 8)}` : ''}`;
}

/**
 * Replaces a table's body with one row per item.
 * @template T @param {HTMLElement} table @param {T[]} items @param {(x: T) => Array<string | number | Node>} cells @param {(x: T) => string} [rowClass]
 */
function renderRows(table, items, cells, rowClass) {
  const heads = [...table.querySelectorAll('th')];
  const body = /** @type {HTMLElement} */ (table.querySelector('tbody'));
  if (items.length === 0) {
    body.replaceChildren(h('tr', null, h('td', { colspan: String(heads.length), class: 'muted' }, 'none')));
    return;
  }
  body.replaceChildren(...items.map((x) => h('tr', rowClass?.(x) ? { class: /** @type {string} */ (rowClass(x)) } : null,
    ...cells(x).map((c, i) => h('td', heads[i]?.classList.contains('num') ? { class: 'num' } : null, c)))));
}

function spark(/** @type {number[]} */ points) {
  const c = /** @type {HTMLCanvasElement} */ (h('canvas', { class: 'spark', width: '320', height: '48', 'aria-hidden': 'true' }));
  const ctx = c.getContext('2d');
  if (!ctx || points.length < 2) return c;
  const max = Math.max(...points, 1e-9);
  ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue('--spark').trim() || '#1f6feb';
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach((p, i) => {
    const x = ((HISTORY - points.length + i) / (HISTORY - 1)) * c.width; // newest on the right
    const y = c.height - 2 - (p / max) * (c.height - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  return c;
}

function renderTraffic(/** @type {any} */ t) {
  $('window').textContent = `(rates and percentiles over the last ${t.windowSeconds} s)`;
  for (const r of t.routes) {
    const h0 = history.get(r.route) ?? [];
    h0.push(r.rps);
    if (h0.length > HISTORY) h0.shift();
    history.set(r.route, h0);
  }
  renderRows($('traffic'), t.routes, (/** @type {any} */ r) => [
    r.route === 'none' ? '(no route)' : r.route, num(r.rps), spark(history.get(r.route) ?? []), msText(r.p50Ms), msText(r.p99Ms),
    num(r.window.status4xx), num(r.window.status5xx), num(r.total.rateLimited), num(r.total.quotaExceeded), num(r.total.requests),
  ]);
}

function renderUsage(/** @type {any} */ u) {
  if (u === null) return;
  $('usage-day').textContent = `(${u.day}, UTC)`;
  renderRows($('usage'), u.consumers, (/** @type {any} */ c) => [c.consumer, num(c.requests), num(c.inputTokens), num(c.outputTokens), num(c.tokens), c.cost ?? '–']);
  const notes = [`Refreshed ${new Date(u.refreshedAt).toLocaleTimeString()} (every 10 s).`];
  if (u.leftOut) notes.push(`${u.leftOut} consumers not read.`);
  if (u.error) notes.push(u.error);
  $('usage-note').textContent = notes.join(' ');
}

function renderConfig(/** @type {any} */ g) {
  const r = g.lastReload;
  const items = [
    ['generation', String(g.id)], ['hash', g.hash || '–'], ['loaded', new Date(g.loadedAt).toLocaleString()], ['file', g.file ?? '–'],
  ];
  const dl = $('config');
  dl.replaceChildren(...items.flatMap(([k, v]) => [h('dt', null, k), h('dd', { class: 'mono' }, v)]));
  dl.append(h('dt', null, 'last reload'));
  if (r === null) dl.append(h('dd', { class: 'muted' }, 'none since start'));
  else {
    const dd = h('dd', null, h('span', { class: r.ok ? 'ok' : 'bad' }, r.ok ? `ok → generation ${r.generation}` : 'refused: the running config keeps serving'), ` (${r.durationMs} ms)`);
    if (r.problems?.length) dd.append(h('ul', { class: 'problems mono' }, ...r.problems.map((/** @type {string} */ p) => h('li', null, p))));
    const ch = r.changes;
    if (ch) {
      const parts = [];
      for (const k of ['routes', 'upstreams']) for (const op of ['added', 'removed', 'changed']) if (ch[k][op].length) parts.push(`${k} ${op}: ${ch[k][op].join(', ')}`);
      if (ch.sections.length) parts.push(`sections: ${ch.sections.join(', ')}`);
      if (ch.restartRequired.length) parts.push(`needs a restart: ${ch.restartRequired.join(', ')}`);
      if (parts.length) dd.append(h('div', { class: 'muted' }, parts.join(' · ')));
    }
    dl.append(dd);
  }
}

// ---------------------------------------------------------------- upstreams (kept, so an edited weight survives updates)

function renderUpstreams(/** @type {any[]} */ ups) {
  const root = $('upstreams');
  const seen = new Set();
  const order = [];
  for (const u of ups) {
    const sig = `${u.name}|${u.targets.map((/** @type {any} */ t) => t.url).join('|')}`;
    let card = upstreamCards.get(u.name);
    if (!card || card.sig !== sig) { card = upstreamCard(u, sig); upstreamCards.set(u.name, card); }
    card.update(u);
    seen.add(u.name);
    order.push(card.el);
  }
  for (const name of [...upstreamCards.keys()]) if (!seen.has(name)) upstreamCards.delete(name);
  if (order.length !== root.children.length || order.some((el, i) => root.children[i] !== el)) root.replaceChildren(...order);
}

function circuitText(/** @type {any} */ c) {
  if (!c) return '–';
  return c.state === 'open' ? `open (${Math.ceil(c.retryAfterMs / 1000)} s)` : c.state;
}

/** One upstream: its targets with live state, a weight input per target, and the weight actions. */
function upstreamCard(/** @type {any} */ u, /** @type {string} */ sig) {
  const name = u.name;
  const status = h('span', { class: 'badge' });
  const meta = h('span', { class: 'muted' });
  const rows = u.targets.map((/** @type {any} */ t) => {
    const input = /** @type {HTMLInputElement} */ (h('input', { type: 'number', min: '0', max: '1000000', step: '1', 'aria-label': `weight of ${t.url}`, 'data-target': t.url }));
    input.value = String(t.weight);
    input.addEventListener('input', () => input.classList.add('dirty'));
    const only = h('button', { type: 'button', 'data-action': 'only', title: `send every new request of ${name} to ${t.url}` }, 'all traffic here');
    const cells = { state: h('td'), health: h('td'), circuit: h('td'), inflight: h('td', { class: 'num' }), role: h('td') };
    const tr = h('tr', { 'data-target': t.url }, h('td', { class: 'mono' }, t.url), cells.role, h('td', null, input), cells.state, cells.health, cells.circuit, cells.inflight, h('td', null, only));
    return { url: t.url, tr, input, only, cells };
  });
  const apply = h('button', { type: 'button', class: 'primary', 'data-action': 'apply' }, 'apply weights');
  const reset = h('button', { type: 'button', 'data-action': 'reset' }, 'discard edits');
  const el = h('div', { class: 'upstream', 'data-upstream': name },
    h('div', { class: 'head' }, h('h3', null, name), status, meta),
    h('table', null,
      h('thead', null, h('tr', null, ...['target', 'role', 'weight', 'state', 'health check', 'circuit', 'in flight', ''].map((x) => h('th', x === 'in flight' ? { class: 'num' } : null, x)))),
      h('tbody', null, ...rows.map((/** @type {any} */ r) => r.tr))),
    h('div', { class: 'actions' }, apply, reset));

  /** @type {any} */
  let current = u;
  const weights = () => Object.fromEntries(rows.map((/** @type {any} */ r) => [r.url, Number(r.input.value)]));
  apply.addEventListener('click', () => void setWeights(name, current, weights(), rows));
  reset.addEventListener('click', () => rows.forEach((/** @type {any} */ r, /** @type {number} */ i) => { r.input.value = String(current.targets[i].weight); r.input.classList.remove('dirty'); }));
  rows.forEach((/** @type {any} */ r) => r.only.addEventListener('click', () => {
    const top = Math.max(100, ...current.targets.map((/** @type {any} */ t) => t.weight));
    void setWeights(name, current, Object.fromEntries(current.targets.map((/** @type {any} */ t) => [t.url, t.url === r.url ? top : 0])), rows);
  }));

  return {
    sig, el,
    update(/** @type {any} */ next) {
      current = next;
      status.textContent = next.status;
      status.className = `badge status-${next.status}`;
      const bits = [`balance: ${next.balance}`];
      if (next.circuit) bits.push(`circuit: ${circuitText(next.circuit)}`);
      if (next.fallback.length) bits.push(`fallback: ${next.fallback.join(', ')}`);
      if (next.retry) bits.push(`retry: ${next.retry.attempts} (budget ${next.retry.budget})`);
      meta.textContent = bits.join(' · ');
      next.targets.forEach((/** @type {any} */ t, /** @type {number} */ i) => {
        const r = rows[i];
        r.cells.role.textContent = t.role;
        r.cells.state.textContent = t.state;
        r.cells.state.className = `state-${t.state}`;
        r.cells.health.textContent = t.health === null ? '–' : `${t.health.healthy ? 'passing' : 'failing'}${t.health.lastResponseMs !== null ? ` · ${t.health.lastResponseMs} ms` : ''}${t.health.lastError ? ` · ${t.health.lastError}` : ''}`;
        r.cells.health.className = t.health === null ? '' : t.health.healthy ? 'ok' : 'bad';
        r.cells.circuit.textContent = circuitText(t.circuit);
        r.cells.circuit.className = t.circuit ? `state-${t.circuit.state}` : '';
        r.cells.inflight.textContent = String(t.inflight);
        if (!r.input.classList.contains('dirty') && document.activeElement !== r.input) r.input.value = String(t.weight);
      });
    },
  };
}

/** POST /admin/upstreams/:name/weights after the operator confirms what changes. */
async function setWeights(/** @type {string} */ name, /** @type {any} */ current, /** @type {Record<string, number>} */ next, /** @type {any[]} */ rows) {
  const changes = current.targets.filter((/** @type {any} */ t) => next[t.url] !== t.weight).map((/** @type {any} */ t) => `  ${t.url}: ${t.weight} → ${next[t.url]}`);
  const notice = $('notice');
  if (changes.length === 0) { notice.textContent = `${name}: no weight changes.`; return; }
  if (Object.values(next).some((w) => !Number.isInteger(w) || w < 0 || w > 1_000_000)) { notice.textContent = `${name}: weights are integers from 0 to 1000000.`; return; }
  if (!confirm(`Change the weights of upstream "${name}"?\n\n${changes.join('\n')}\n\nNew requests follow at once; requests in flight are not affected.`)) return;
  try {
    const u = await api('POST', `/admin/upstreams/${encodeURIComponent(name)}/weights`, { weights: next });
    rows.forEach((r) => r.input.classList.remove('dirty'));
    upstreamCards.get(name)?.update(u);
    notice.className = 'ok';
    notice.textContent = `${name}: weights now ${u.targets.map((/** @type {any} */ t) => `${t.url} ${t.weight}`).join(', ')}.`;
  } catch (e) {
    notice.className = 'bad';
    notice.textContent = `${name}: ${e instanceof Error ? e.message : String(e)}`;
  }
}

start();
