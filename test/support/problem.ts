import assert from 'node:assert/strict';

export interface Problem { type: string; title: string; status: number; detail: string; code: string; requestId: string; [k: string]: unknown }

/**
 * Asserts an RFC 9457 problem+json answer with the wire contract's members, and that the
 * request id in the body is the one in the X-Request-Id header. Returns the parsed body.
 */
export function assertProblem(status: number, headers: Record<string, string | string[] | undefined>, bodyText: string, expected: { status: number; code: string }): Problem {
  assert.equal(status, expected.status, `status (body: ${bodyText.slice(0, 300)})`);
  assert.equal(String(headers['content-type']), 'application/problem+json');
  const p = JSON.parse(bodyText) as Problem;
  assert.equal(p.type, `urn:gatehouse:problem:${expected.code}`);
  assert.equal(p.code, expected.code);
  assert.equal(p.status, expected.status);
  assert.equal(typeof p.title, 'string');
  assert.ok(p.title.length > 0);
  assert.equal(typeof p.detail, 'string');
  assert.ok(p.detail.length > 0);
  assert.equal(typeof p.requestId, 'string');
  assert.ok(p.requestId.length > 0);
  if (headers['x-request-id'] !== undefined) assert.equal(p.requestId, headers['x-request-id']);
  return p;
}

/** Nothing about the upstream's address or the socket-level failure may reach a client. */
export function assertNoInternals(bodyText: string, ports: number[]): void {
  const id = (JSON.parse(bodyText) as { requestId?: string }).requestId ?? '';
  const text = id ? bodyText.replace(id, '') : bodyText; // a random id may contain a port's digits
  for (const needle of ['127.0.0.1', 'localhost', 'ECONN', 'EPIPE', 'HPE_', 'UND_ERR', 'socket', 'Error:', ' at ', ...ports.map(String)]) {
    assert.ok(!text.includes(needle), `error body leaks "${needle}": ${bodyText}`);
  }
}
