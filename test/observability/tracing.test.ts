// OpenTelemetry tracing through a real gateway: spans exported over OTLP/HTTP (JSON) to a collector stub on an
// ephemeral port, decoded and checked for structure (server span, a child per phase that waited, a client span
// per upstream attempt), propagation (the traceparent the upstream saw), attributes (HTTP and GenAI semantic
// conventions, never a secret) and bounded export (drops counted when the collector is down).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startGateway, eventually } from '../helpers.ts';
import { keyPair, publicJwk, sign, startJwksServer } from '../auth/support.ts';
import { startLlmStub } from '../support/llm-stub.ts';
import { startOtlpCollector, type CollectedSpan } from '../support/otlp-collector.ts';
import { refusedPort, metric } from '../upstreams/faulty-upstream.ts';

const ISS = 'https://idp.example';
const SERVER = 2; // OTLP SpanKind: 1 internal, 2 server, 3 client
const CLIENT = 3;

test('a request with a JWKS fetch, a Redis rate limit and one retry: server span, phase children, sibling attempts, upstream traceparent, no secret anywhere', async (t) => {
  const kp = keyPair('rsa');
  const jwks = await startJwksServer([await publicJwk(kp, 'k1', 'RS256')], 'max-age=3600');
  const llm = await startLlmStub('llm', 'openai');
  llm.usage = { input: 11, output: 7 };
  const collector = await startOtlpCollector();
  const dead = await refusedPort();
  const prefix = `h15b-trace-${randomBytes(3).toString('hex')}:`;
  const g = await startGateway(`
observability:
  tracing:
    endpoint: ${collector.url}
    sampleRatio: 1
    headers: { authorization: "Bearer COLLECTOR-CANARY-\${OTEL_TOKEN}" }
    serviceName: gw-under-test
state: { store: redis, redis: { url: redis://127.0.0.1:6379, keyPrefix: "${prefix}" } }
auth:
  jwt:
    - { name: idp, issuer: ${ISS}, jwksUri: ${jwks.url}, algorithms: [RS256] }
upstreams:
  llm:
    balance: weighted
    targets: [ { url: http://127.0.0.1:${dead}, weight: 1000 }, { url: ${llm.url}, weight: 1 } ]
    retry: { attempts: 2, backoff: 5ms, budget: 100% }
routes:
  - name: chat
    match: { path: /v1/chat/completions, methods: [POST] }
    upstream: llm
    auth: jwt
    rateLimit: [ { limit: 100, window: 1m, by: route }, { limit: 100000, window: 1m, unit: tokens, by: route } ]
`, { env: { OTEL_TOKEN: 'zz9' }, gateway: { tracing: { scheduledDelayMillis: 50, exportTimeoutMillis: 2000 } } });
  t.after(async () => { await g.close(); await llm.close(); await jwks.close(); await collector.close(); });

  const token = await sign(kp.privateKey, { alg: 'RS256', kid: 'k1', iss: ISS, sub: 'user-CANARY-SUB' });
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'BODY-CANARY prompt text' }] });
  const inboundTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const r = await request(`${g.url}/v1/chat/completions?sig=QUERY-CANARY&x=1`, {
    method: 'POST', body,
    headers: {
      authorization: `Bearer ${token}`, 'x-upstream-token': 'HEADER-CANARY', cookie: 'session=COOKIE-CANARY', 'content-type': 'application/json',
      traceparent: `00-${inboundTrace}-00f067aa0ba902b7-01`,
    },
  });
  assert.equal(r.statusCode, 200, await r.body.text());

  const spans = await eventually(() => {
    const s = collector.spans.filter((x) => x.traceId === inboundTrace);
    return s.some((x) => x.kind === SERVER) ? s : null;
  }, 5000) as CollectedSpan[];
  const server = spans.find((s) => s.kind === SERVER)!;
  // The caller's span is the server span's parent: the trace continues across the gateway.
  assert.equal(server.parentSpanId, '00f067aa0ba902b7');
  assert.equal(server.name, 'POST chat');
  assert.equal(server.service, 'gw-under-test');
  assert.equal(server.attributes['http.request.method'], 'POST');
  assert.equal(server.attributes['http.route'], 'chat');
  assert.equal(server.attributes['url.path'], '/v1/chat/completions');
  assert.equal(server.attributes['http.response.status_code'], 200);
  assert.equal(server.attributes['server.address'], '127.0.0.1');
  assert.equal(server.attributes['network.protocol.version'], '1.1');
  assert.equal(server.attributes['gen_ai.usage.input_tokens'], 11);
  assert.equal(server.attributes['gen_ai.usage.output_tokens'], 7);
  assert.equal(typeof server.attributes['gen_ai.response.model'], 'string');

  const children = spans.filter((s) => s.parentSpanId === server.spanId);
  const names = children.map((s) => s.name);
  // The auth step waited for the JWKS fetch, the rate limit for Redis: each is a child of the server span.
  assert.ok(names.includes('policy auth'), `phase spans: ${names.join(', ')}`);
  assert.ok(names.includes('policy rate-limit'), `phase spans: ${names.join(', ')}`);
  // Two attempts, siblings under the server span: the refused one (an error) and the retry that answered.
  const attempts = children.filter((s) => s.kind === CLIENT);
  assert.equal(attempts.length, 2, JSON.stringify(children, null, 1));
  const [first, second] = attempts.sort((a, b) => Number(a.attributes['http.request.resend_count'] ?? 0) - Number(b.attributes['http.request.resend_count'] ?? 0));
  assert.equal(first.attributes['error.type'], 'ECONNREFUSED');
  assert.equal(first.status, 2);
  assert.equal(first.attributes['server.port'], dead);
  assert.equal(second.attributes['http.request.resend_count'], 1);
  assert.equal(second.attributes['http.response.status_code'], 200);
  assert.equal(second.attributes['gatehouse.upstream'], 'llm');

  // What the upstream received is the answering attempt's span context: same trace, that span as the parent.
  assert.equal(llm.received.length, 1);
  assert.equal(llm.received[0].headers.traceparent, `00-${inboundTrace}-${second.spanId}-01`);

  // No credential, query value, cookie, prompt or collector header in any span (nor anywhere in the export bodies).
  const exported = collector.raw.join('\n');
  for (const canary of ['QUERY-CANARY', 'HEADER-CANARY', 'COOKIE-CANARY', 'BODY-CANARY', 'CANARY-SUB', 'COLLECTOR-CANARY', token, token.split('.')[2]]) {
    assert.ok(!exported.includes(canary), `exported spans contain ${canary}`);
  }
  // The collector's header arrived on the export; it appears in no log line.
  assert.equal(collector.requests[0].authorization, 'Bearer COLLECTOR-CANARY-zz9');
  assert.ok(!g.rawLogs().includes('COLLECTOR-CANARY'));
  // ... nor in the live config the admin API shows.
  const shown = await (await request(`${g.adminUrl}/admin/config`)).body.text();
  assert.match(shown, /"authorization": ?"\*\*\*"/);
  assert.ok(!shown.includes('COLLECTOR-CANARY'));
});

test('sampleRatio 0: nothing exported, but the upstream still gets a fresh valid traceparent; an inbound sampled parent is followed', async (t) => {
  const llm = await startLlmStub('llm', 'openai');
  const collector = await startOtlpCollector();
  const g = await startGateway(`
observability: { tracing: { endpoint: ${collector.url}, sampleRatio: 0 } }
upstreams: { llm: { targets: [ ${llm.url} ] } }
routes:
  - { name: chat, match: { path: /v1/chat/completions }, upstream: llm, auth: public }
`, { gateway: { tracing: { scheduledDelayMillis: 20, exportTimeoutMillis: 2000 } } });
  t.after(async () => { await g.close(); await llm.close(); await collector.close(); });
  const send = (h: Record<string, string> = {}) => request(`${g.url}/v1/chat/completions`, { method: 'POST', body: '{"model":"m"}', headers: { 'content-type': 'application/json', ...h } }).then((r) => r.body.text());
  await send();
  const tp = String(llm.received[0].headers.traceparent);
  assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(collector.spans.length, 0);
  // parent-based: a caller that sampled its trace gets it recorded even at ratio 0
  await send({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  await eventually(() => collector.spans.some((s) => s.traceId === '0af7651916cd43dd8448eb211c80319c' && s.kind === SERVER), 3000);
});

test('collector down: export is bounded, spans past the queue are dropped and counted, requests are unaffected', async (t) => {
  const llm = await startLlmStub('llm', 'openai');
  const dead = await refusedPort();
  const g = await startGateway(`
observability: { tracing: { endpoint: http://127.0.0.1:${dead}/v1/traces, sampleRatio: 1, maxQueueSize: 8 } }
upstreams: { llm: { targets: [ ${llm.url} ] } }
routes:
  - { name: chat, match: { path: /v1/chat/completions }, upstream: llm, auth: public }
`, { gateway: { tracing: { scheduledDelayMillis: 60_000, exportTimeoutMillis: 3000 } } });
  t.after(async () => { await g.close(); await llm.close(); });
  for (let i = 0; i < 20; i++) {
    const r = await request(`${g.url}/v1/chat/completions`, { method: 'POST', body: '{"model":"m"}', headers: { 'content-type': 'application/json' } });
    assert.equal(r.statusCode, 200);
    await r.body.text();
  }
  // 20 requests × 2 spans (server + attempt). The first full batch (8) goes to the dead collector, whose export
  // retries until its timeout; meanwhile the queue is full and every later span is refused and counted. Once that
  // export fails, its spans are counted too: every span is accounted for, none is held.
  const scrape = async () => (await request(`${g.adminUrl}/metrics`)).body.text();
  const counts = await eventually(async () => {
    const text = await scrape();
    const full = metric(text, 'gatehouse_tracing_spans_dropped_total', { reason: 'queue_full' }) ?? 0;
    const failed = metric(text, 'gatehouse_tracing_spans_dropped_total', { reason: 'export_failed' }) ?? 0;
    return full + failed === 40 ? { full, failed } : null;
  }, 10_000);
  assert.ok(counts!.full >= 24, JSON.stringify(counts));
  assert.ok(counts!.failed >= 8, JSON.stringify(counts));
});
