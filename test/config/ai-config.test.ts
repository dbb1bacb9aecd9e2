import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';

const load = (yaml: string, env: Record<string, string> = {}) => loadConfigText(yaml, 't.yaml', { env });
const fails = (yaml: string, re: RegExp, env: Record<string, string> = {}) => assert.throws(() => load(yaml, env), (e: unknown) => e instanceof ConfigError && re.test(e.message), String(re));

test('provider upstreams: keys only from the environment, placeholders refused in production, default targets', () => {
  const route = `routes: [ { match: { path: /v1/chat/completions }, upstream: openai, auth: public } ]`;
  fails(`upstreams: { openai: { provider: openai, apiKey: sk-live-written-in-the-file } }\n${route}`, /t\.yaml:1:\d+ upstreams\.openai\.apiKey: an API key is read from the environment/);
  fails(`server: { environment: production }\nupstreams: { openai: { provider: openai, apiKey: "\${K}" } }\n${route}`, /apiKey: is a placeholder value; refusing to start in production/, { K: 'changeme' });
  fails(`server: { environment: production }\nupstreams: { openai: { provider: openai } }\n${route}`, /apiKey: is not set/);
  const ok = load(`upstreams: { openai: { provider: openai, apiKey: "\${K}" }, claude: { provider: anthropic, apiKey: "\${K}" } }\n${route}`, { K: 'sk-proj-abcdef' });
  assert.deepEqual(ok.config.upstreams.openai.targets, [{ url: 'https://api.openai.com', weight: 100 }]);
  assert.deepEqual(ok.config.upstreams.claude.targets, [{ url: 'https://api.anthropic.com', weight: 100 }]);
  fails(`upstreams: { local: { provider: openai-compatible } }\n${route.replace('openai', 'local')}`, /a openai-compatible upstream needs targets/);
});

test('models routes: upstream optional, candidates checked; cost budgets need prices for every candidate model', () => {
  const base = `upstreams: { a: { targets: [ "http://127.0.0.1:1" ] } }\n`;
  const c = load(`${base}routes: [ { name: chat, match: { path: /c, methods: [POST] }, auth: public, models: { m: [ { upstream: a, model: x } ] } } ]`);
  assert.equal(c.config.routes[0].upstream, 'a', 'the first candidate stands for the route');
  fails(`${base}routes: [ { match: { path: /c, methods: [POST] }, auth: public, models: { m: [ nope ] } } ]`, /models\.m\[0\]\.upstream: unknown upstream "nope"/);
  fails(`${base}routes: [ { match: { path: /c, methods: [GET] }, auth: public, models: { m: [ a ] } } ]`, /takes no method with a body/);
  fails(`${base}routes: [ { match: { path: /c }, auth: public, upstream: a, failover: {} } ]`, /failover moves between the candidates of models/);
  const cost = (pricing: string) => `${base}${pricing}\nconsumers: []\nplans: { p: { quota: { cost: { limit: 12.5, period: month } } } }\nroutes: [ { match: { path: /c, methods: [POST] }, auth: apikey, models: { gpt-4o: [ { upstream: a, model: gpt-4o-mini } ] }, quota: { usage: cost } } ]`;
  fails(cost(''), /usage: cost needs a pricing: section/);
  fails(cost('pricing: { models: { gpt-4o: { input: 1, output: 2 } } }'), /model "gpt-4o-mini" has no price/);
  const ok = load(cost('pricing: { models: { "gpt-4o*": { input: 0.15, output: 0.6 } } }'));
  assert.equal(ok.config.plans.p.quota!.cost!.limit, 12_500_000, 'a currency amount kept as micro-units');
  fails(cost('pricing: { models: { "gpt-4o*": { input: 0.0000001, output: 0.6 } } }'), /at most six decimals/);
});
