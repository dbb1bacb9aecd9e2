// The streamed multipart rewriter (src/pipeline/multipart.ts) on its own: any chunking of any body gives the same
// parts; checks alone pass the bytes as they came; what it refuses (malformed bodies, huge part headers, a written
// value that smuggles in the boundary). The socket-level behaviour is in test/policies/request-transform.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { GatewayError } from '../../src/errors.ts';
import { MultipartRewriter, scanParts, type MultipartPlan } from '../../src/pipeline/multipart.ts';
import { parseMultipart, sha256 } from '../e2e/stubs.ts';

const BOUNDARY = '----WebKitFormBoundary7MA4YWxkTrZu0gW';
const CT = `multipart/form-data; boundary=${BOUNDARY}`;

function body(parts: Array<{ name: string; data: Buffer; filename?: string }>, preamble = ''): Buffer {
  const out: Buffer[] = [Buffer.from(preamble)];
  for (const p of parts) {
    out.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"\r\nContent-Type: application/octet-stream` : ''}\r\n\r\n`), p.data, Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`--${BOUNDARY}--\r\nepilogue`));
  return Buffer.concat(out);
}

/** Content that looks like delimiters without being one: CRLF, dashes, most of the boundary. */
function tricky(n: number): Buffer {
  const pieces = [randomBytes(randomInt(1, 200)), Buffer.from('\r\n--'), Buffer.from(`\r\n--${BOUNDARY.slice(0, -1)}`), Buffer.from('\r\n\r\n'), Buffer.from('--')];
  const out: Buffer[] = [];
  let len = 0;
  while (len < n) { const p = pieces[randomInt(pieces.length)]; out.push(p); len += p.length; }
  const b = Buffer.concat(out).subarray(0, n);
  // A body never holds its own delimiter (RFC 2046 §5.1.1): random bytes after a near-miss could complete one.
  return b.includes(`--${BOUNDARY}`) ? tricky(n) : b;
}

function run(input: Buffer, plan: MultipartPlan, sizes: () => number, budget = 1 << 20): Buffer {
  const rw = new MultipartRewriter(BOUNDARY, plan, budget);
  const out: Buffer[] = [];
  for (let i = 0; i < input.length;) { const n = sizes(); out.push(...rw.push(input.subarray(i, i + n))); i += n; }
  out.push(...rw.end());
  return Buffer.concat(out);
}

const renameDrop: MultipartPlan = {
  prepend: [{ name: 'injected', value: 'from the identity' }],
  modifies: true,
  plan: (name) => ({ drop: name === 'drop_me' || name === 'injected', name: name === 'project_id' ? 'avtarType' : name, check: null }),
};

test('any chunking of a body with tricky contents gives the same parts: renamed, dropped, prepended, files byte for byte', () => {
  for (let round = 0; round < 40; round++) {
    const parts = [
      { name: 'project_id', data: Buffer.from('User-181473_Project_15') },
      { name: 'file', filename: 'a.bin', data: tricky(randomInt(0, 20_000)) },
      { name: 'drop_me', data: tricky(300) },
      { name: 'injected', data: Buffer.from('client says') },
      { name: 'late', data: tricky(randomInt(0, 500)) },
    ];
    const input = body(parts, round % 2 ? 'a preamble line\r\n' : '');
    const maxChunk = [1, 3, 17, 64, 1000, 70_000][round % 6];
    const out = run(input, renameDrop, () => randomInt(1, maxChunk + 1));
    const got = parseMultipart(out, CT).map((p) => [p.name, p.filename ?? null, sha256(p.data)]);
    assert.deepEqual(got, [
      ['injected', null, sha256('from the identity')],
      ['avtarType', null, sha256(parts[0].data)],
      ['file', 'a.bin', sha256(parts[1].data)],
      ['late', null, sha256(parts[4].data)],
    ], `round ${round}, chunks up to ${maxChunk}`);
    // The peek-time scanner reads the same parts from the original.
    assert.deepEqual(scanParts(input, BOUNDARY).map((p) => [p.name, p.filename ?? null, p.whole]), parts.map((p) => [p.name, p.filename ?? null, true]));
  }
});

test('checks alone pass the bytes exactly as they came, and see every value, however chunked', () => {
  const seen: string[] = [];
  const plan: MultipartPlan = { prepend: [], modifies: false, plan: (name, isFile) => ({ drop: false, name, check: name === 'user_id' && !isFile ? (v) => { seen.push(v); } : null }) };
  const input = body([{ name: 'user_id', data: Buffer.from('u1') }, { name: 'file', filename: 'f', data: tricky(5000) }, { name: 'user_id', data: Buffer.from('u2\r\n--x') }]);
  for (const max of [1, 7, 100, 10_000]) {
    seen.length = 0;
    assert.ok(run(input, plan, () => randomInt(1, max + 1)).equals(input), `chunks up to ${max}`);
    assert.deepEqual(seen, ['u1', 'u2\r\n--x']);
  }
  // A check that refuses throws its own error out of push().
  const refuse: MultipartPlan = { ...plan, plan: (name) => ({ drop: false, name, check: name === 'user_id' ? () => { throw new GatewayError('forbidden', 'no'); } : null }) };
  assert.throws(() => run(input, refuse, () => 1000), (e: unknown) => e instanceof GatewayError && e.code === 'forbidden');
});

test('refused: no closing boundary (400), a part head over 16 KiB (413), a checked value over the budget (413), a written value carrying the boundary (400)', () => {
  const code = (f: () => unknown) => { try { f(); return 'none'; } catch (e) { return (e as GatewayError).code; } };
  const open = body([{ name: 'a', data: Buffer.from('x') }]).subarray(0, 60);
  assert.equal(code(() => run(open, renameDrop, () => 10)), 'bad_request');
  const hugeHead = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\nX-Pad: ${'p'.repeat(17_000)}\r\n\r\nx\r\n--${BOUNDARY}--\r\n`);
  assert.equal(code(() => run(hugeHead, renameDrop, () => 4096)), 'payload_too_large');
  const checked: MultipartPlan = { prepend: [], modifies: false, plan: (name) => ({ drop: false, name, check: () => {} }) };
  assert.equal(code(() => run(body([{ name: 'a', data: randomBytes(5000) }]), checked, () => 512, 4096)), 'payload_too_large');
  const smuggle: MultipartPlan = { ...renameDrop, prepend: [{ name: 'note', value: `hi\r\n--${BOUNDARY}\r\ncontent-disposition: form-data; name="user_id"\r\n\r\nvictim` }] };
  assert.equal(code(() => run(body([{ name: 'a', data: Buffer.from('x') }]), smuggle, () => 100)), 'bad_request');
});

test('a preamble line, then the first delimiter cut by a chunk edge: every two-cut split keeps the first part (CI found a lost one)', () => {
  const input = body([{ name: 'project_id', data: Buffer.from('User-181473_Project_15') }, { name: 'late', data: Buffer.from('zz') }], 'a preamble line\r\n');
  const split = (cuts: number[]) => {
    const rw = new MultipartRewriter(BOUNDARY, renameDrop, 1 << 20);
    const out: Buffer[] = [];
    let prev = 0;
    for (const c of [...cuts, input.length]) { out.push(...rw.push(input.subarray(prev, c))); prev = c; }
    out.push(...rw.end());
    return parseMultipart(Buffer.concat(out), CT).map((p) => p.name).join(',');
  };
  for (let a = 1; a < 80; a++) for (let b = a + 1; b < 90; b++) assert.equal(split([a, b]), 'injected,avtarType,late', `cuts at ${a} and ${b}`);
});
