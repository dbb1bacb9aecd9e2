// Identity config that must not load: providers whose algorithms do not fit their keys, routes that ask for
// an identity nothing can provide, ambiguous consumers and keys, and authorize rules that cannot hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../../src/config/load.ts';
import { ConfigError, formatIssue } from '../../src/config/errors.ts';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { keyPair } from './support.ts';

function errorsOf(yaml: string): string[] {
  try {
    loadConfigText(yaml, 'gw.yaml', { env: {} });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.issues.map(formatIssue);
  }
  assert.fail('the config loaded');
}

const ROUTES = (auth: string, extra = '') => `
upstreams: { u: { targets: [ http://127.0.0.1:9 ] } }
routes:
  - { name: r, match: { path: /r }, upstream: u, auth: ${auth}${extra} }
`;
const rsa = keyPair('rsa');
const ec = keyPair('ec-256');
const pss = keyPair('rsa-pss');
const pem = (p: string) => JSON.stringify(p);

test('auth: jwt needs a provider; auth: apikey / any without keyed consumers in the file: a warning while keys can be created at run time, else an error', () => {
  assert.ok(errorsOf(ROUTES('jwt')).some((l) => /routes\[0\]\.auth: auth: jwt needs a provider/.test(l)));
  // the admin API (enabled by default) or a shared Redis can create keys while the gateway runs
  for (const extra of ['', 'admin: { enabled: false }\nstate: { store: redis }\n']) {
    for (const mode of ['apikey', 'any']) {
      const { warnings } = loadConfigText(extra + ROUTES(mode), 'gw.yaml', { env: {} });
      assert.ok(warnings.some((w) => /^routes\[0\]\.auth: auth: (apikey|any \(no provider under auth\.jwt\)): no consumer in the file has keys, so this route refuses every API key until one is created at run time \(POST \/admin\/consumers\/<id>\/keys\)$/.test(w)), `${mode} ${extra}: ${warnings}`);
    }
  }
  const closed = 'admin: { enabled: false }\n';
  assert.ok(errorsOf(closed + ROUTES('apikey')).some((l) => /^gw\.yaml:5:\d+ routes\[0\]\.auth: auth: apikey needs consumers with keys \(none in the file, and none can be created at run time: the admin API is disabled and the memory store is this process's own\)$/.test(l)));
  assert.ok(errorsOf(closed + ROUTES('any')).some((l) => /routes\[0\]\.auth: auth: any \(no provider under auth\.jwt\) needs consumers with keys/.test(l)));
});

test('algorithms must fit the key material: no HS with a public key or a JWKS, no RS/ES with a secret, curves match', () => {
  const cases: Array<[string, RegExp]> = [
    [`{ name: a, secret: "${'s'.repeat(40)}", algorithms: [HS256, RS256] }`, /auth\.jwt\[0\]\.algorithms: RS256 cannot verify with a shared secret/],
    [`{ name: a, publicKey: ${pem(rsa.pem)}, algorithms: [RS256, HS256] }`, /auth\.jwt\[0\]\.algorithms: HS256 cannot verify with an RSA key .*algorithm-confusion/],
    [`{ name: a, publicKey: ${pem(ec.pem)}, algorithms: [ES384] }`, /ES384 cannot verify with an EC prime256v1 key \(it fits ES256\)/],
    [`{ name: a, publicKey: ${pem(ec.pem)}, algorithms: [RS256] }`, /RS256 cannot verify with an EC/],
    [`{ name: a, jwksUri: "https://idp.example/jwks", algorithms: [HS256] }`, /auth\.jwt\[0\]\.algorithms: HS256 cannot be used with jwksUri/],
    [`{ name: a, publicKey: /nonexistent/key.pem }`, /auth\.jwt\[0\]\.publicKey: cannot read publicKey file "\/nonexistent\/key.pem": ENOENT/],
    [`{ name: a, publicKey: "-----BEGIN PUBLIC KEY-----\\nnot a key\\n-----END PUBLIC KEY-----" }`, /auth\.jwt\[0\]\.publicKey: publicKey is not a PEM public key/],
    [`{ name: a, algorithms: [none] }`, /auth\.jwt\[0\]\.algorithms\[0\]/],
    [`{ name: a, publicKey: ${pem(pss.pem)} }`, /auth\.jwt\[0\]\.publicKey: publicKey is an RSASSA-PSS key; export it as a plain RSA public key/],
  ];
  for (const [provider, re] of cases) {
    const lines = errorsOf(`auth: { jwt: [ ${provider} ] }\n${ROUTES('jwt')}`);
    assert.ok(lines.some((l) => re.test(l)), `${provider}\n  expected ${re}\n  got ${lines.join('\n  ')}`);
  }
});

test('a key file with the right type loads, and the default algorithms follow the key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-check-'));
  try {
    writeFileSync(join(dir, 'ec.pem'), ec.pem);
    const { config } = loadConfigText(`auth: { jwt: [ { name: a, publicKey: ${join(dir, 'ec.pem')} } ] }\n${ROUTES('jwt')}`, 'gw.yaml', { env: {} });
    assert.equal(config.auth.jwt[0].algorithms, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('issuers pick providers, so they are unique, and only one provider may omit issuer', () => {
  const s = 's'.repeat(40);
  const dup = errorsOf(`auth: { jwt: [ { name: a, issuer: https://x, secret: "${s}" }, { name: b, issuer: https://x, secret: "${s}" } ] }\n${ROUTES('jwt')}`);
  assert.ok(dup.some((l) => /auth\.jwt\[1\]\.issuer: issuer "https:\/\/x" is also auth\.jwt\[0\]'s/.test(l)), dup.join('\n'));
  const two = errorsOf(`auth: { jwt: [ { name: a, secret: "${s}" }, { name: b, secret: "${s}" } ] }\n${ROUTES('jwt')}`);
  assert.ok(two.some((l) => /auth\.jwt\[1\]\.issuer: only one provider may omit issuer/.test(l)), two.join('\n'));
});

test('consumer ids are unique and a key hash may identify only one consumer', () => {
  const h = hashApiKey('k1');
  const lines = errorsOf(`consumers:
  - { id: acme, keys: ["${h}", "${hashApiKey('k2')}"] }
  - { id: acme, keys: ["${hashApiKey('k3')}"] }
  - { id: beta, keys: ["${h}"] }
${ROUTES('apikey')}`);
  assert.ok(lines.some((l) => /consumers\[1\]\.id: duplicate consumer id "acme" \(also consumers\[0\]\)/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /consumers\[2\]\.keys\[0\]: this key hash is listed twice \(also consumers\[0\]\.keys\[0\]\)/.test(l)), lines.join('\n'));
  const plain = errorsOf(`consumers: [ { id: a, keys: ["my-plain-key"] } ]\n${ROUTES('apikey')}`);
  assert.ok(plain.some((l) => /keys are stored as hashes/.test(l)));
});

test('authorize needs an identity, known plans and consumers, and claims only where JWTs are accepted', () => {
  const keys = `consumers: [ { id: acme, keys: ["${hashApiKey('k')}"] } ]\nplans: { free: {}, pro: {} }\n`;
  assert.ok(errorsOf(keys + ROUTES('public', ', authorize: { plans: [pro] }')).some((l) => /routes\[0\]\.authorize: authorize needs an identity/.test(l)));
  assert.ok(errorsOf(keys + ROUTES('apikey', ', authorize: { plans: [prp] }')).some((l) => /authorize\.plans\[0\]: unknown plan "prp" \(did you mean "pro"\?\)/.test(l)));
  assert.ok(errorsOf(keys + ROUTES('apikey', ', authorize: { consumers: [acmee] }')).some((l) => /authorize\.consumers\[0\]: unknown consumer "acmee" \(did you mean "acme"\?\)/.test(l)));
  assert.ok(errorsOf(keys + ROUTES('apikey', ', authorize: { claims: { role: admin } }')).some((l) => /API-key identities have no claims/.test(l)));
  assert.ok(errorsOf(keys + ROUTES('apikey', ', authorize: {}')).some((l) => /give consumers, plans or claims/.test(l)));
});

test('claims cannot be mapped onto headers the gateway or HTTP owns; the key header must be a plain header', () => {
  const s = 's'.repeat(40);
  const lines = errorsOf(`auth:
  jwt: [ { name: a, secret: "${s}", claimsToHeaders: { sub: Authorization, plan: "X Bad" } } ]
  apiKeys: { header: Host }
${ROUTES('jwt')}`);
  assert.ok(lines.some((l) => /claimsToHeaders\.sub: "Authorization" is a header the gateway or HTTP itself owns/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /claimsToHeaders\.plan: "X Bad" is not a header name/.test(l)));
  assert.ok(lines.some((l) => /auth\.apiKeys\.header: "Host" cannot carry API keys/.test(l)));
});
