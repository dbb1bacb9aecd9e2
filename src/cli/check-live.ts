import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { lookup } from 'node:dns/promises';
import WebSocket from 'ws';
import type { Config, RouteConfig, UpstreamConfig } from '../config/schema.ts';
import { compileRewrite } from '../routing/rewrite.ts';

/**
 * `gatehouse check --live`: is what the config points at really there? Seed 002's integration validator, from
 * the config itself. Per upstream target: DNS, the TLS handshake (certificate trusted, matching, days left), the
 * health path when the upstream declares one, else a TCP connect. Per route: one probe against the route's
 * upstream directly (its rewrite applied), and also through a running gateway when `--gateway URL` is given.
 *
 * A default probe is safe by construction: GET for a route that serves GET (the response is read up to its
 * headers, then the connection is closed, so a stream never holds the check), OPTIONS otherwise, a WebSocket
 * handshake (then close 1000) on a WebSocket route. Anything else (a POST, a body, an API key) only when the
 * route declares it in `check:`. Nothing here runs in the gateway's request path.
 */

export type Verdict = 'ok' | 'warn' | 'FAIL' | 'skip';
export interface CheckResult {
  /** dns | tls | health | connect | route | route via gateway | websocket | websocket via gateway */
  kind: string;
  /** `upstream chat` / `route chat-stream`. */
  subject: string;
  /** What was probed: a URL, or `host:port`. */
  target: string;
  verdict: Verdict;
  detail: string;
  ms?: number;
}

export interface LiveCheckOptions {
  /** Base URL of a running gateway serving this config: route probes go through it as well. */
  gateway?: string;
  /** Per probe (default 10 s). */
  timeoutMs?: number;
  /** Probes in flight at once (default 8). */
  concurrency?: number;
  /** Days of certificate validity under which a TLS check warns (default 14). */
  certWarnDays?: number;
}

const SAFE_FALLBACK = 'OPTIONS';

export async function runLiveCheck(config: Config, opts: LiveCheckOptions = {}): Promise<CheckResult[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const jobs: Array<() => Promise<CheckResult>> = [];
  for (const [name, up] of Object.entries(config.upstreams)) {
    const subject = `upstream ${name}`;
    const hosts = new Map<string, URL>();
    for (const t of up.targets) { const u = new URL(t.url); hosts.set(`${u.protocol}//${u.host}`, u); }
    for (const u of hosts.values()) {
      if (!net.isIP(u.hostname.replace(/^\[|\]$/g, ''))) jobs.push(() => checkDns(subject, u));
      if (u.protocol === 'https:') jobs.push(() => checkTls(subject, u, timeoutMs, opts.certWarnDays ?? 14));
      jobs.push(up.health ? () => checkHealth(subject, u, up, timeoutMs) : () => checkConnect(subject, u, timeoutMs));
    }
  }
  for (const r of config.routes) {
    const subject = `route ${r.name}`;
    if (!r.enabled) { jobs.push(async () => ({ kind: 'route', subject, target: '-', verdict: 'skip', detail: 'enabled: false' })); continue; }
    const up = config.upstreams[r.upstream];
    const target = up?.targets.find((t) => t.weight > 0) ?? up?.targets[0];
    const probe = routeProbe(r);
    if (!target || !probe) { jobs.push(async () => ({ kind: 'route', subject, target: '-', verdict: 'skip', detail: probe ? 'no target' : 'no concrete path to probe: declare `check:`' })); continue; }
    const direct = upstreamUrl(target.url, r, probe.path);
    jobs.push(() => (r.websocket && !r.check ? wsProbe('websocket', subject, direct, probe, timeoutMs, false) : httpProbe('route', subject, direct, probe, timeoutMs, false)));
    if (opts.gateway) {
      const via = new URL(probe.path, opts.gateway);
      jobs.push(() => (r.websocket && !r.check ? wsProbe('websocket via gateway', subject, via, probe, timeoutMs, true) : httpProbe('route via gateway', subject, via, probe, timeoutMs, true)));
    }
  }
  return pool(jobs, opts.concurrency ?? 8);
}

interface Probe { method: string; path: string; headers: Record<string, string>; body?: string; expect?: number[]; declared: boolean }

/**
 * The request for a route: its `check:`, else a safe method on a concrete path made from its match (`:param`
 * filled with a placeholder, `*` dropped; header and query conditions satisfied so the gateway picks this route).
 */
export function routeProbe(r: RouteConfig): Probe | null {
  if (r.check) return { method: r.check.method, path: r.check.path, headers: { ...r.check.headers }, body: r.check.body, expect: r.check.expect, declared: true };
  const raw = r.match.path ?? r.match.paths?.[0];
  if (!raw) return null;
  let path = raw.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, 'gatehouse-check').replace(/\/?\*$/, '') || '/';
  const methods = r.match.methods;
  const method = r.websocket || !methods || methods.includes('GET') ? 'GET' : SAFE_FALLBACK;
  const headers: Record<string, string> = {};
  for (const [h, c] of Object.entries(r.match.headers ?? {})) { const v = conditionValue(c); if (v !== undefined) headers[h] = v; }
  const query = new URLSearchParams();
  for (const [q, c] of Object.entries(r.match.query ?? {})) { const v = conditionValue(c); if (v !== undefined) query.set(q, v); }
  if ([...query].length) path += `?${query}`;
  return { method, path, headers, declared: false };
}

function conditionValue(c: { equals?: string; in?: string[]; prefix?: string; present?: boolean }): string | undefined {
  if (c.equals !== undefined) return c.equals;
  if (c.in?.length) return c.in[0];
  if (c.prefix !== undefined) return c.prefix + 'check';
  if (c.present === true) return 'check';
  return undefined;
}

/** The URL the gateway would forward the probe's path to on this target (base path and `rewrite` applied). */
function upstreamUrl(targetUrl: string, r: RouteConfig, pathAndQuery: string): URL {
  const q = pathAndQuery.indexOf('?');
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const search = q < 0 ? '' : pathAndQuery.slice(q);
  const rewrite = compileRewrite(r.rewrite);
  const params = Object.fromEntries([...(r.match.path ?? '').matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => [m[1], 'gatehouse-check']));
  const forwarded = rewrite ? rewrite(path, params) : path;
  const base = new URL(targetUrl);
  const u = new URL(base.href);
  u.pathname = base.pathname.replace(/\/$/, '') + forwarded;
  u.search = search;
  return u;
}

function isOk(status: number, p: Probe, viaGateway: boolean, code: string | undefined): { ok: boolean; note: string } {
  if (p.expect) return { ok: p.expect.includes(status), note: p.expect.includes(status) ? '' : `expected ${p.expect.join('/')}` };
  if (status >= 500) return { ok: false, note: '' };
  if (viaGateway && (status === 401 || status === 403)) return { ok: true, note: 'auth required (give check.headers to go further)' };
  // The gateway's own 405 for the safe method: the route is in its table, the upstream was not reached.
  if (viaGateway && code === 'method_not_allowed') return { ok: true, note: `the gateway serves the route but not ${p.method}; declare check: to probe end to end` };
  if (status === 404 || status === 405) return { ok: true, note: 'the service answered (no such resource or method there: declare check: for a real probe)' };
  return { ok: true, note: '' };
}

function httpProbe(kind: string, subject: string, url: URL, p: Probe, timeoutMs: number, viaGateway: boolean): Promise<CheckResult> {
  const t0 = performance.now();
  const target = `${p.method} ${url.href}`;
  return new Promise((resolve) => {
    const done = (verdict: Verdict, detail: string) => { resolve({ kind, subject, target, verdict, detail, ms: Math.round(performance.now() - t0) }); };
    const mod = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { 'user-agent': 'gatehouse-check', ...p.headers };
    if (p.body !== undefined) headers['content-length'] = String(Buffer.byteLength(p.body));
    const req = mod.request(url, { method: p.method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const status = res.statusCode ?? 0;
      const code = res.headers['content-type']?.includes('problem+json') ? problemCode(res) : Promise.resolve(undefined);
      void code.then((c) => {
        res.destroy();
        req.destroy();
        // The gateway's own 404 means this route is not in the config it runs.
        if (viaGateway && c === 'not_found' && !p.expect?.includes(404)) return done('FAIL', `404 not_found: the gateway at ${url.origin} has no such route (another config?)`);
        const { ok, note } = isOk(status, p, viaGateway, c);
        done(ok ? 'ok' : 'FAIL', [String(status), c, note].filter(Boolean).join(' '));
      });
    });
    req.on('timeout', () => { req.destroy(new Error(`no response head within ${timeoutMs} ms`)); });
    req.on('error', (e) => done('FAIL', errorText(e)));
    req.end(p.body);
  });
}

/** The `code` of a problem+json body (read up to 4 KiB, a second at most). */
function problemCode(res: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const finish = () => { clearTimeout(timer); try { resolve((JSON.parse(text) as { code?: string }).code); } catch { resolve(undefined); } };
    const timer = setTimeout(finish, 1000);
    res.setEncoding('utf8');
    res.on('data', (d: string) => { text += d; if (text.length > 4096) finish(); });
    res.on('end', finish);
    res.on('error', finish);
  });
}

function wsProbe(kind: string, subject: string, url: URL, p: Probe, timeoutMs: number, viaGateway: boolean): Promise<CheckResult> {
  const t0 = performance.now();
  const u = new URL(url.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return new Promise((resolve) => {
    let settled = false;
    const done = (verdict: Verdict, detail: string) => { if (settled) return; settled = true; resolve({ kind, subject, target: u.href, verdict, detail, ms: Math.round(performance.now() - t0) }); };
    const ws = new WebSocket(u, { headers: { 'user-agent': 'gatehouse-check', ...p.headers }, handshakeTimeout: timeoutMs });
    ws.on('open', () => { done('ok', '101 handshake'); ws.close(1000); });
    ws.on('unexpected-response', (_req, res) => {
      const s = res.statusCode ?? 0;
      res.destroy();
      if (viaGateway && (s === 401 || s === 403)) done('ok', `${s} auth required (give check.headers to go further)`);
      else done('FAIL', `${s} instead of 101 Switching Protocols`);
      ws.terminate();
    });
    ws.on('error', (e) => done('FAIL', errorText(e)));
  });
}

async function checkDns(subject: string, u: URL): Promise<CheckResult> {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const t0 = performance.now();
  if (net.isIP(host)) return { kind: 'dns', subject, target: host, verdict: 'skip', detail: 'IP address' };
  try {
    const addrs = await lookup(host, { all: true });
    return { kind: 'dns', subject, target: host, verdict: 'ok', detail: addrs.map((a) => a.address).slice(0, 3).join(', '), ms: Math.round(performance.now() - t0) };
  } catch (e) {
    return { kind: 'dns', subject, target: host, verdict: 'FAIL', detail: errorText(e), ms: Math.round(performance.now() - t0) };
  }
}

function port(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

function checkConnect(subject: string, u: URL, timeoutMs: number): Promise<CheckResult> {
  const t0 = performance.now();
  const target = `${u.hostname}:${port(u)}`;
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: port(u), timeout: timeoutMs });
    const done = (verdict: Verdict, detail: string) => { s.destroy(); resolve({ kind: 'connect', subject, target, verdict, detail, ms: Math.round(performance.now() - t0) }); };
    s.once('connect', () => done('ok', 'TCP connect (no health path configured)'));
    s.once('timeout', () => done('FAIL', `no TCP connection within ${timeoutMs} ms`));
    s.once('error', (e) => done('FAIL', errorText(e)));
  });
}

function checkHealth(subject: string, u: URL, up: UpstreamConfig, timeoutMs: number): Promise<CheckResult> {
  const url = new URL(up.health!.path, u.origin);
  const expect = up.health!.expectStatus;
  const probe: Probe = { method: 'GET', path: url.pathname, headers: {}, declared: false, expect: expect ?? Array.from({ length: 200 }, (_, i) => 200 + i) };
  return httpProbe('health', subject, url, probe, timeoutMs, false);
}

function checkTls(subject: string, u: URL, timeoutMs: number, warnDays: number): Promise<CheckResult> {
  const t0 = performance.now();
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const target = `${host}:${port(u)}`;
  return new Promise((resolve) => {
    const s = tls.connect({ host, port: port(u), servername: net.isIP(host) ? undefined : host, rejectUnauthorized: false, timeout: timeoutMs, ALPNProtocols: ['http/1.1'] });
    const done = (verdict: Verdict, detail: string) => { s.destroy(); resolve({ kind: 'tls', subject, target, verdict, detail, ms: Math.round(performance.now() - t0) }); };
    s.once('secureConnect', () => {
      const cert = s.getPeerCertificate();
      if (!cert || !cert.valid_to) return done('FAIL', 'no certificate');
      const days = Math.floor((Date.parse(cert.valid_to) - Date.now()) / 86_400_000);
      const expiry = `expires ${new Date(cert.valid_to).toISOString().slice(0, 10)} (${days} days)`;
      if (!s.authorized) return done('FAIL', `certificate not trusted: ${String(s.authorizationError)}; ${expiry}`);
      const mismatch = tls.checkServerIdentity(host, cert);
      if (mismatch) return done('FAIL', `certificate does not name ${host}: ${mismatch.message}`);
      if (days < 0) return done('FAIL', `certificate expired ${new Date(cert.valid_to).toISOString().slice(0, 10)}`);
      done(days < warnDays ? 'warn' : 'ok', `${s.getProtocol()}, ${expiry}`);
    });
    s.once('timeout', () => done('FAIL', `no TLS handshake within ${timeoutMs} ms`));
    s.once('error', (e) => done('FAIL', errorText(e)));
  });
}

function errorText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const msg = err.message ?? String(e);
  if (!err.code) return msg;
  const at = msg.indexOf(err.code);
  return at >= 0 ? msg.slice(at) : `${err.code}: ${msg}`;
}

async function pool<T>(jobs: Array<() => Promise<T>>, n: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, async () => {
    while (next < jobs.length) { const i = next++; out[i] = await jobs[i]!(); }
  }));
  return out;
}

export function formatCheckTable(results: CheckResult[]): string {
  const cols = ['RESULT', 'CHECK', 'SUBJECT', 'TARGET', 'TIME', 'DETAIL'];
  const rows = results.map((r) => [r.verdict, r.kind, r.subject, r.target, r.ms === undefined ? '-' : `${r.ms}ms`, r.detail]);
  const width = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(width[i]!))).join('  ').trimEnd();
  return [line(cols), ...rows.map(line)].join('\n');
}

export function summarize(results: CheckResult[]): { failed: CheckResult[]; text: string } {
  const failed = results.filter((r) => r.verdict === 'FAIL');
  const warned = results.filter((r) => r.verdict === 'warn').length;
  const text = failed.length
    ? `${failed.length} of ${results.length} checks failed: ${failed.map((f) => `${f.subject} (${f.kind} ${f.target}: ${f.detail})`).join('; ')}`
    : `all ${results.length - results.filter((r) => r.verdict === 'skip').length} checks passed${warned ? ` (${warned} warning${warned > 1 ? 's' : ''})` : ''}`;
  return { failed, text };
}
