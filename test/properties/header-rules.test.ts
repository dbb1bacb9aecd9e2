// Properties of header rules (src/policies/header-rules.ts, header-syntax.ts) with fast-check: the load-time check
// accepts exactly the names and values Node can send, what loads is delivered as written, and values read from the
// request per call (query, headers) can never break or split a header, whatever they hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, validateHeaderName, validateHeaderValue, type IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { HEADER_NAME, HEADER_VALUE } from '../../src/policies/header-syntax.ts';
import { startGateway } from '../helpers.ts';
import { rawRequest } from '../support/raw-http.ts';

const nodeAccepts = (name: string, value: string) => {
  try { validateHeaderName(name); validateHeaderValue(name, value); return true; } catch { return false; }
};
/** Header-ish text: token characters, separators, whitespace, controls, obs-text and beyond Latin-1. */
const hchar = fc.constantFrom('a', 'Z', '0', '-', '_', '.', '!', '#', '~', '`', '|', "'", '*', '+', '^', '%', '&',
  ' ', '\t', ':', ';', ',', '"', '(', ')', '/', '@', '=', '?', '[', '\\', '\r', '\n', '\u0000', '\u0001', '\u007f',
  '\u0080', '\u00e9', '\u00ff', '\u0100', '\u20ac', '\ud83d\ude00');
const token = fc.string({ unit: fc.constantFrom('a', 'Z', '0', '-', '_', '.', '!', '#', '~', '`', '|', "'", '*', '+', '^', '%', '&'), maxLength: 8 });
/** Half clean, half hostile, so that both sides of the load-time check are exercised. */
const value = fc.oneof(fc.string({ unit: fc.constantFrom('a', ' ', '\t', ':', ',', '"', '\u00e9', '\u00ff', '/', '='), maxLength: 16 }), fc.string({ unit: hchar, maxLength: 16 }));
/** Names no rule may touch are out of scope here (test/policies/header-rules.test.ts): every name starts "x-p-". */
const name = fc.oneof(token, fc.string({ unit: hchar, maxLength: 8 })).map((s) => `x-p-${s}`);

test('property (1000 runs): HEADER_NAME / HEADER_VALUE accept exactly what Node can send', () => {
  fc.assert(fc.property(fc.string({ unit: hchar, maxLength: 10 }), value, (n, v) => {
    assert.equal(HEADER_NAME.test(n) && HEADER_VALUE.test(v), n.length > 0 && nodeAccepts(n, v), `${JSON.stringify(n)}: ${JSON.stringify(v)}`);
  }), { numRuns: 1000 });
});

function config(upstreamUrl: string, rules: unknown): string {
  return stringify({
    upstreams: { echo: { targets: [upstreamUrl] } },
    routes: [{ name: 'r', match: { path: '/r' }, upstream: 'echo', auth: 'public', headers: rules }],
  });
}

test('property (120 runs, end to end): a literal rule loads exactly when Node can send it, and then arrives as written (request side at the upstream, response side at the client)', async (t) => {
  let lastHeaders: IncomingHttpHeaders = {};
  const up = createServer((req, res) => { lastHeaders = req.headers; res.setHeader('x-up', 'u').end('{}'); });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  const upstreamUrl = `http://127.0.0.1:${(up.address() as { port: number }).port}`;
  const gw = await startGateway(config(upstreamUrl, undefined));
  t.after(async () => { await gw.close(); up.close(); });
  let loaded = 0;
  await fc.assert(fc.asyncProperty(name, value, name, value, async (qn, qv, sn, sv) => {
    const rules = { request: { set: { [qn]: qv } }, response: { set: { [sn]: sv } } };
    const yaml = config(upstreamUrl, rules);
    let ok = true;
    try { loadConfigText(yaml, 'p.yaml', { env: {} }); } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      ok = false;
      for (const i of e.issues) assert.ok(i.line !== undefined && i.col !== undefined, `unpositioned: ${i.message}`);
    }
    const sendable = nodeAccepts(qn, qv) && nodeAccepts(sn, sv);
    assert.equal(ok, sendable, `loads ${ok}, Node can send ${sendable}: ${JSON.stringify(rules)}`);
    if (!ok) return;
    loaded++;
    const r = gw.reload(yaml);
    assert.ok(r.ok, String(r.problems));
    const res = await rawRequest(gw.port, 'GET /r HTTP/1.1\r\nHost: t');
    assert.equal(res.status, 200, res.raw);
    // A receiver drops optional whitespace around a field value (RFC 9110 §5.5); raw text is read as Latin-1.
    const ows = (s: string) => s.replace(/^[ \t]+|[ \t]+$/g, '');
    assert.equal(lastHeaders[qn.toLowerCase()], ows(qv));
    assert.equal(res.headers[sn.toLowerCase()], ows(Buffer.from(sv, 'latin1').toString('latin1')));
  }), { numRuns: 120 });
  t.diagnostic(`${loaded} of 120 generated rule sets loaded and were sent`);
});

test('property (200 runs, end to end): a value copied from the query or a request header never splits or breaks the forwarded header; printable ASCII passes as is, anything else percent-encoded', async (t) => {
  let lastHeaders: IncomingHttpHeaders = {};
  let lastRaw: string[] = [];
  const up = createServer((req, res) => { lastHeaders = req.headers; lastRaw = req.rawHeaders; res.end('{}'); });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  const gw = await startGateway(config(`http://127.0.0.1:${(up.address() as { port: number }).port}`, {
    request: { set: { 'x-from-q': { from: 'query.q' }, 'x-from-h': { from: 'header.x-src' } } },
    response: { set: { 'x-echo-q': { from: 'query.q' } } },
  }));
  t.after(async () => { await gw.close(); up.close(); });
  // What a client can put in a header line: visible ASCII, SP/HTAB and obs-text bytes (sent as Latin-1).
  const inbound = fc.string({ unit: fc.constantFrom('a', ' ', '\t', ':', '%', '\u0080', '\u00e9', '\u00ff', ',', '"'), maxLength: 12 });
  await fc.assert(fc.asyncProperty(value, inbound, async (q, h) => {
    const res = await rawRequest(gw.port, `GET /r?q=${encodeURIComponent(q.replace(/[\ud800-\udfff]/g, '')).replace(/%20/g, '+')} HTTP/1.1\r\nHost: t\r\nX-Src: ${h}`);
    assert.equal(res.status, 200, res.raw);
    const decoded = q.replace(/[\ud800-\udfff]/g, '');
    const expected = /^[\x20-\x7e]*$/.test(decoded) ? decoded : encodeURIComponent(decoded);
    const ows = (s: string) => s.replace(/^[ \t]+|[ \t]+$/g, '');
    assert.equal(lastHeaders['x-from-q'] ?? '', ows(expected), `query ${JSON.stringify(q)}`);
    assert.equal(res.headers['x-echo-q'] ?? '', ows(expected));
    const hv = ows(Buffer.from(h, 'utf8').toString('latin1')); // the raw client writes UTF-8; Node reads header bytes as Latin-1
    assert.equal(lastHeaders['x-from-h'] ?? '', ows(/^[\x20-\x7e]*$/.test(hv) ? hv : encodeURIComponent(hv)), `header ${JSON.stringify(h)}`);
    for (let i = 0; i < lastRaw.length; i += 2) assert.match(lastRaw[i + 1], /^[\t\x20-\x7e\x80-\xff]*$/);
    assert.equal(Object.keys(lastHeaders).filter((k) => !['host', 'connection', 'x-src', 'x-from-q', 'x-from-h', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'x-request-id', 'traceparent', 'forwarded', 'x-forwarded-prefix', 'via'].includes(k)).join(), '', 'no header appears that the client did not send or a rule did not set');
  }), { numRuns: 200 });
});
