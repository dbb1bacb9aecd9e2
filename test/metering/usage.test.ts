import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageParser } from '../../src/metering/usage.ts';

/** Feeds `text` in chunks of `size` bytes (splitting lines and multi-byte characters anywhere). */
function parse(contentType: string, text: string, size = 7) {
  const p = new UsageParser();
  p.onHeaders(contentType);
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i += size) p.onData(buf.subarray(i, i + size));
  return p.result();
}

test('OpenAI and Anthropic JSON usage blocks', () => {
  assert.deepEqual(parse('application/json', JSON.stringify({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 } })), { input: 12, output: 30, total: 42, found: true });
  assert.deepEqual(parse('application/json; charset=utf-8', JSON.stringify({ content: [{ text: 'héllo' }], usage: { input_tokens: 10, cache_read_input_tokens: 5, output_tokens: 7 } })), { input: 15, output: 7, total: 22, found: true, cached: 5 });
  // prompt-cache reads are a part of the input, priced as cachedInput (OpenAI: prompt_tokens_details.cached_tokens)
  assert.deepEqual(parse('application/json', JSON.stringify({ usage: { prompt_tokens: 100, completion_tokens: 1, total_tokens: 101, prompt_tokens_details: { cached_tokens: 64 } } })), { input: 100, output: 1, total: 101, found: true, cached: 64 });
});

test('the model the response names is read from JSON and from SSE (OpenAI chunks, Anthropic message_start)', () => {
  const p = new UsageParser();
  p.onHeaders('application/json');
  p.onData(Buffer.from(JSON.stringify({ model: 'gpt-4o-2024-08-06', usage: { prompt_tokens: 1, completion_tokens: 1 } })));
  p.result();
  assert.equal(p.model, 'gpt-4o-2024-08-06');
  const s = new UsageParser();
  s.onHeaders('text/event-stream');
  s.onData(Buffer.from(`event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { model: 'claude-x', usage: { input_tokens: 3, output_tokens: 1 } } })}\n\n`));
  s.result();
  assert.equal(s.model, 'claude-x');
});

test('a JSON body past the capture limit is searched in its tail', () => {
  const big = 'x'.repeat(1_300_000);
  const body = JSON.stringify({ choices: [{ message: { content: big + ' "usage": {"prompt_tokens": 999}' } }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } });
  assert.deepEqual(parse('application/json', body, 65536), { input: 3, output: 4, total: 7, found: true });
});

test('OpenAI SSE: the final chunk with usage, split across reads', () => {
  const events = [
    `data: ${JSON.stringify({ choices: [{ delta: { content: 'tök' } }] })}`,
    `data: ${JSON.stringify({ choices: [{ delta: { content: 'usage is a word here' } }], usage: null })}`,
    `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 9, total_tokens: 14 } })}`,
    'data: [DONE]',
  ];
  for (const size of [1, 3, 64, 4096]) assert.deepEqual(parse('text/event-stream', events.join('\n\n') + '\n\n', size), { input: 5, output: 9, total: 14, found: true }, `chunk size ${size}`);
});

test('Anthropic SSE: input from message_start, cumulative output from message_delta', () => {
  const text = [
    'event: message_start',
    `data: ${JSON.stringify({ type: 'message_start', message: { usage: { input_tokens: 25, output_tokens: 1 } } })}`,
    '',
    'event: content_block_delta',
    `data: ${JSON.stringify({ type: 'content_block_delta', delta: { text: 'Hi' } })}`,
    '',
    'event: message_delta',
    `data: ${JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 15 } })}`,
    '',
  ].join('\r\n');
  assert.deepEqual(parse('text/event-stream', text, 5), { input: 25, output: 15, total: 40, found: true });
});

test('without a usage block the estimate is response bytes / 4', () => {
  assert.deepEqual(parse('text/plain', 'a'.repeat(401)), { input: 0, output: 0, total: 101, found: false });
  assert.deepEqual(parse('text/event-stream', 'data: {"choices":[]}\n\n'), { input: 0, output: 0, total: 6, found: false });
});

test('an over-long SSE line is skipped without holding it, and parsing resumes after it', () => {
  const long = 'data: ' + 'y'.repeat(200_000) + ' usage';
  const good = `data: ${JSON.stringify({ usage: { prompt_tokens: 1, completion_tokens: 2 } })}`;
  assert.deepEqual(parse('text/event-stream', `${long}\n\n${good}\n\n`, 1000), { input: 1, output: 2, total: 3, found: true });
});
