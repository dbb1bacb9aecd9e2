// The ids every request gets (src/observability/trace.ts): formatted from a random pool into a scratch buffer, so
// the test is that the format holds and that no id shares bytes with another, across pool refills.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newRequestId, nextTraceparent, parseTraceparent, requestIdFrom } from '../../src/observability/trace.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('request ids are RFC 9562 version-4 UUIDs, all distinct over many pool refills, and none changes after it is made', () => {
  const ids = Array.from({ length: 5000 }, () => newRequestId()); // 5,000 × 16 bytes: ~20 refills of the 4 KiB pool
  const first = ids[0];
  for (const id of ids) assert.match(id, UUID_V4);
  assert.equal(new Set(ids).size, ids.length);
  for (let i = 0; i < 100; i++) nextTraceparent(undefined);
  assert.equal(ids[0], first, 'an id is its own string, not a view of the scratch buffer');
  // Hex digits are spread (not a constant fill): every position but the dashes, the version and the variant varies.
  const varying = [...first].map((_, i) => new Set(ids.map((id) => id[i])).size);
  for (const [i, n] of varying.entries()) if (![8, 13, 14, 18, 19, 23].includes(i)) assert.ok(n > 4, `position ${i} takes ${n} values`);
});

test('a new traceparent is 00-<trace id>-<span id>-01 with non-zero ids; a valid inbound one keeps its trace id and flags', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const tp = nextTraceparent(undefined);
    assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.ok(parseTraceparent(tp) !== null, 'a traceparent the gateway makes parses as valid');
    seen.add(tp.slice(3, 35));
  }
  assert.equal(seen.size, 3000, 'trace ids do not repeat');
  const inbound = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00';
  const next = nextTraceparent(inbound);
  assert.match(next, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-00$/);
  assert.notEqual(next.slice(36, 52), '00f067aa0ba902b7', 'the gateway is a new span');
});

test('an inbound X-Request-Id is kept when well-formed, replaced by a new UUID otherwise', () => {
  assert.equal(requestIdFrom('abc-123'), 'abc-123');
  assert.match(requestIdFrom('a"b'), UUID_V4);
  assert.match(requestIdFrom('x'.repeat(129)), UUID_V4);
  assert.match(requestIdFrom(undefined), UUID_V4);
});
