import { SignJWT, type JWTPayload } from 'jose';
import { loadConfigFile } from '../config/load.ts';
import { ConfigError, formatIssue } from '../config/errors.ts';
import { parseDuration } from '../config/units.ts';
import { hashApiKey, generateApiKey } from '../auth/api-keys.ts';
import { isHmac } from '../auth/key-material.ts';

type Values = Record<string, string | boolean | string[] | undefined>;

function fail(msg: string, code = 1): number {
  process.stderr.write(`gatehouse: ${msg}\n`);
  return code;
}

/**
 * `gatehouse token --sub ID [--plan P] [--ttl 1h] [--claim k=v ...] [--config FILE] [--provider NAME]`:
 * a development token signed with a provider's HS secret, so a route can be tried without an identity
 * provider. Refused when the config says production: there, tokens come from the real issuer.
 */
export async function runToken(v: Values): Promise<number> {
  const sub = v.sub as string | undefined;
  if (!sub) return fail('token: --sub is required (the subject the token is for)', 2);
  const ttl = parseDuration((v.ttl as string | undefined) ?? '1h');
  if (typeof ttl === 'string') return fail(`token: --ttl: ${ttl}`, 2);
  const claims: JWTPayload = {};
  for (const c of (v.claim as string[] | undefined) ?? []) {
    const eq = c.indexOf('=');
    if (eq <= 0) return fail(`token: --claim "${c}" is not name=value`, 2);
    claims[c.slice(0, eq)] = claimValue(c.slice(eq + 1));
  }

  const file = (v.config as string | undefined) ?? 'gatehouse.yaml';
  let config;
  try {
    config = loadConfigFile(file).config;
  } catch (e) {
    if (e instanceof ConfigError) return fail(`invalid config:\n${e.issues.map((i) => '  ' + formatIssue(i)).join('\n')}`);
    throw e;
  }
  if (config.server.environment === 'production') return fail('token: refusing to sign a development token: server.environment is production (tokens there come from your identity provider)');

  const withSecret = config.auth.jwt.filter((p) => p.secret !== undefined);
  const name = v.provider as string | undefined;
  const provider = name !== undefined ? config.auth.jwt.find((p) => p.name === name) : withSecret[0];
  if (name !== undefined && provider === undefined) return fail(`token: no provider named "${name}" (known: ${config.auth.jwt.map((p) => p.name).join(', ') || 'none'})`);
  if (provider === undefined) return fail('token: no auth.jwt provider has a secret; development tokens are signed with an HS secret');
  if (provider.secret === undefined) return fail(`token: provider "${provider.name}" verifies with ${provider.jwksUri ? 'a JWKS' : 'a public key'}; the gateway cannot sign for it`);
  if (name === undefined && withSecret.length > 1) return fail(`token: several providers have a secret (${withSecret.map((p) => p.name).join(', ')}); choose one with --provider`, 2);

  const alg = (provider.algorithms ?? ['HS256']).find(isHmac) ?? 'HS256';
  if (v.plan !== undefined) claims[provider.planClaim] = v.plan as string;
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).setSubject(sub).setIssuedAt(now).setExpirationTime(now + Math.max(1, Math.round(ttl / 1000)));
  if (provider.issuer !== undefined) jwt.setIssuer(provider.issuer);
  if (provider.audiences.length > 0) jwt.setAudience(provider.audiences.length === 1 ? provider.audiences[0] : provider.audiences);
  process.stdout.write(`${await jwt.sign(new TextEncoder().encode(provider.secret))}\n`);
  return 0;
}

/** `42`, `true`, `["a","b"]` and `{"x":1}` keep their JSON type; anything else is a string. */
function claimValue(s: string): unknown {
  if (/^(-?\d+(\.\d+)?|true|false|null|\[.*\]|\{.*\}|".*")$/s.test(s)) {
    try { return JSON.parse(s); } catch { /* a plain string after all */ }
  }
  return s;
}

/**
 * `gatehouse hash-key [KEY]` prints `sha256:<hex>` for the config's `consumers[].keys`. Without KEY the key is
 * read from stdin (keeps it out of shell history); `--generate` makes a new random key and prints both.
 */
export async function runHashKey(positionals: string[], v: Values): Promise<number> {
  if (v.generate) {
    const key = generateApiKey();
    process.stdout.write(`key:  ${key}\nhash: ${hashApiKey(key)}\n`);
    return 0;
  }
  let key = positionals[0];
  if (key === undefined) {
    if (process.stdin.isTTY) process.stderr.write('key (then Enter, Ctrl-D): ');
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    key = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  if (key === '') return fail('hash-key: the key is empty', 2);
  process.stdout.write(`${hashApiKey(key)}\n`);
  return 0;
}
