// Units of the request-head checks (src/server/request-head.ts); the adversarial cases over sockets are in
// test/security/smuggling.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { absoluteAuthority, checkRequestHead, isAuthority } from '../../src/server/request-head.ts';

const req = (o: { host?: string; url?: string; te?: string; minor?: number; raw?: string[] }) => ({
  rawHeaders: o.raw ?? ['Host', o.host ?? ''],
  httpVersionMajor: 1,
  httpVersionMinor: o.minor ?? 1,
  url: o.url ?? '/',
  headers: { ...(o.host !== undefined ? { host: o.host } : {}), ...(o.te !== undefined ? { 'transfer-encoding': o.te } : {}) },
}) as unknown as IncomingMessage;
const LIM = { maxHeaderCount: 100 };

test('the first Host a process sees is checked, even an empty one (no cached pass for "")', () => {
  assert.equal(checkRequestHead(req({ host: '' }), LIM)?.status, 400);
  assert.equal(checkRequestHead(req({ host: 'api.example' }), LIM), null);
  assert.equal(checkRequestHead(req({ host: '' }), LIM)?.status, 400);
});

test('isAuthority: RFC 3986 §3.2 without userinfo', () => {
  for (const ok of ['a', 'a.b', 'a:1', 'a:65535', '127.0.0.1', '[::1]', '[::1]:80', '[v1.x]', 'a%41b', "a!$&'()*+,;=b"]) assert.ok(isAuthority(ok), ok);
  for (const bad of ['', 'a@b', 'u:p@b', 'a:65536', 'a:', 'a:1:2', 'a b', '[::1', 'a/b', 'a?b', 'a#b', 'a%4', '[::1]x', 'a:-1']) assert.ok(!isAuthority(bad), bad);
});

test('absoluteAuthority and the absolute-form comparison (default ports ignored, case-insensitive)', () => {
  assert.equal(absoluteAuthority('http://a.b:80/x'), 'a.b:80');
  assert.equal(absoluteAuthority('/x'), null);
  assert.equal(checkRequestHead(req({ host: 'a.b', url: 'http://A.B:80/x' }), LIM), null);
  assert.equal(checkRequestHead(req({ host: 'a.b', url: 'https://a.b:443/x' }), LIM), null);
  assert.equal(checkRequestHead(req({ host: 'a.b', url: 'https://a.b:80/x' }), LIM)?.status, 400);
  assert.equal(checkRequestHead(req({ host: 'a.b', url: 'http://c.d/x' }), LIM)?.status, 400);
});

test('Transfer-Encoding codings (RFC 9112 §6.1, §6.3)', () => {
  assert.equal(checkRequestHead(req({ host: 'a', te: 'chunked' }), LIM), null);
  assert.equal(checkRequestHead(req({ host: 'a', te: 'CHUNKED' }), LIM), null);
  assert.equal(checkRequestHead(req({ host: 'a', te: 'gzip, chunked' }), LIM)?.status, 501);
  assert.equal(checkRequestHead(req({ host: 'a', te: 'chunked, gzip' }), LIM)?.status, 400);
  assert.equal(checkRequestHead(req({ host: 'a', te: 'chunked, chunked' }), LIM)?.status, 400);
  assert.equal(checkRequestHead(req({ host: 'a', te: 'chunked', minor: 0 }), LIM)?.status, 400);
});

test('the header count is fields, not array slots; at the limit is fine', () => {
  const raw = (n: number) => Array.from({ length: n }, (_, i) => [`x-${i}`, 'v']).flat();
  assert.equal(checkRequestHead(req({ host: 'a', raw: raw(100) }), LIM), null);
  assert.equal(checkRequestHead(req({ host: 'a', raw: raw(101) }), LIM)?.status, 431);
});
