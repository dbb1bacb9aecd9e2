import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { FieldGuardStream, TopLevelFieldScanner, findTopLevelField, splice } from '../../src/pipeline/json-top-level.ts';

const b = (s: string) => Buffer.from(s);

test('finds the top-level model value and nothing nested, whatever surrounds it', () => {
  const cases: Array<[string, string | null]> = [
    ['{"model":"gpt-4o","messages":[]}', '"gpt-4o"'],
    ['{ "messages": [{"role":"user","content":"say \\"model\\": \\"x\\""}], "model" : "claude" }', '"claude"'],
    ['{"meta":{"model":"inner"},"model":"outer"}', '"outer"'],
    ['{"a":[1,{"model":"n"}],"b":true,"c":null,"d":-1.5e3,"model":"m"}', '"m"'],
    ['{"mod\\u0065l":"escaped-key"}', '"escaped-key"'],
    ['{"x":"\\\\","model":"after-backslash"}', '"after-backslash"'],
    ['{"model":"caf\\u00e9 \\"q\\""}', '"caf\\u00e9 \\"q\\""'],
    ['{"messages":[{"content":"no model here"}]}', null],
    ['{}', null],
  ];
  for (const [json, want] of cases) {
    const body = b(json);
    const at = findTopLevelField(body, 'model');
    if (want === null) { assert.equal(at, null, json); continue; }
    assert.ok(typeof at === 'object' && at !== null, json);
    assert.equal(body.subarray(at.start, at.end).toString(), want, json);
    assert.equal(JSON.parse(json).model, JSON.parse(want), 'the value JSON.parse reads');
  }
});

test('refuses what cannot be routed: not an object, a non-string model, a duplicate model', () => {
  assert.equal(findTopLevelField(b('[{"model":"x"}]'), 'model'), 'not_object');
  assert.equal(findTopLevelField(b('{"model":42}'), 'model'), 'not_string');
  assert.equal(findTopLevelField(b('{"model":{"name":"x"}}'), 'model'), 'not_string');
  assert.equal(findTopLevelField(b('{"model":"cheap","x":1,"model":"expensive"}'), 'model'), 'duplicate');
  assert.equal(findTopLevelField(b('{"model":"cheap","mo\\u0064el":"expensive"}'), 'model'), 'duplicate');
});

test('splice replaces only the value bytes; everything else is byte for byte the client\'s', () => {
  const json = '{ "model" : "gpt-4o",\n  "messages": [{"role":"user","content":"héllo \\u2603"}], "temperature": 0.10 }';
  const body = b(json);
  const at = findTopLevelField(body, 'model') as { start: number; end: number };
  const out = splice(body, at, b(JSON.stringify('gpt-4o-2024-08-06')));
  assert.equal(out.toString(), json.replace('"gpt-4o"', '"gpt-4o-2024-08-06"'));
  assert.deepEqual(JSON.parse(out.toString()), { ...JSON.parse(json), model: 'gpt-4o-2024-08-06' });
});

test('the scan gives the same answer whatever the chunking (random bodies, random cuts)', () => {
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const texts = ['plain', 'with "quotes"', 'back\\slash\\', 'uni ☃ é', '{"model":"fake"}', 'end\\"'];
  for (let iter = 0; iter < 300; iter++) {
    const fields: Array<[string, unknown]> = [];
    for (let i = 0; i < 1 + rnd(5); i++) fields.push([`k${i}`, { messages: [{ role: 'user', content: texts[rnd(texts.length)] }], model: 'nested' }]);
    const at = rnd(fields.length + 1);
    fields.splice(at, 0, ['model', `m-${iter}`]);
    const json = JSON.stringify(Object.fromEntries(fields), null, rnd(2) === 0 ? undefined : 1);
    const body = b(json);
    const s = new TopLevelFieldScanner('model');
    let i = 0;
    while (i < body.length) { const step = 1 + rnd(7); s.push(body.subarray(i, i + step)); i += step; }
    assert.equal(s.problem, null, json);
    assert.equal(s.done, true);
    assert.equal(s.found.length, 1, json);
    assert.equal(JSON.parse(body.subarray(s.found[0].start, s.found[0].end).toString()), `m-${iter}`);
  }
});

test('a duplicate model past the peek fails the streamed rest; an honest rest passes unchanged', async () => {
  const run = async (prefix: string, rest: string[]) => {
    const s = new TopLevelFieldScanner('model');
    s.push(b(prefix));
    const out: Buffer[] = [];
    const g = Readable.from(rest.map(b)).pipe(new FieldGuardStream(s, 'model'));
    for await (const c of g) out.push(c as Buffer);
    return Buffer.concat(out).toString();
  };
  assert.equal(await run('{"model":"a","messages":[{"content":"lo', ['ng text"}],', '"stream":true}']), 'ng text"}],"stream":true}');
  await assert.rejects(run('{"model":"a","messages":[{"content":"lo', ['ng"}],"mod', 'el":"b"}']), /more than one top-level "model"/);
});
