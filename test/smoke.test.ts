import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startDemoServer } from '../src/demo/services.ts';
import { startGateway } from './helpers.ts';

test('a public route proxies to the upstream and returns its answer with a request id', async (t) => {
  const up = await startDemoServer({ name: 'chat' });
  const g = await startGateway(`
upstreams:
  chat: { targets: [ ${up.url} ] }
routes:
  - { name: chat, match: { path: /v1/chat/completions, methods: [POST] }, upstream: chat, auth: public }
`);
  t.after(async () => { await g.close(); await up.close(); });
  const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi there' }] }) });
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  const body = (await r.body.json()) as { usage: { prompt_tokens: number } };
  assert.equal(body.usage.prompt_tokens, 2);
  const miss = await request(`${g.url}/nope`);
  assert.equal(miss.statusCode, 404);
  assert.equal(miss.headers['content-type'], 'application/problem+json');
  assert.equal(((await miss.body.json()) as { code: string }).code, 'not_found');
});
