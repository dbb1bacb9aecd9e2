import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import { parseDuration } from '../config/units.ts';
import { fingerprint, RegistryError, type ConsumerRegistry } from '../consumers/index.ts';
import type { Versioned } from '../consumers/backend.ts';
import { adminProblem, AdminInputError, readJson, sendJson, type AdminHandler, type AdminHost } from './http.ts';
import { adminTokenId, createAudit, type Audit } from './audit.ts';

/** Ids an operator can put in a URL, a header and a log line as they are. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/;
const MAX_GRACE = 30 * 86_400_000;

/**
 * Consumers and API keys, live (docs/authentication.md "Runtime consumers"):
 * - `GET /admin/consumers`, `GET /admin/consumers/:id`: the file's consumers (read-only) and the runtime's,
 *   keys masked to an id and a fingerprint;
 * - `POST /admin/consumers` `{ "id", "plan"? }`; `PATCH /admin/consumers/:id` `{ "plan": "pro" | null }`;
 *   `DELETE /admin/consumers/:id` (its keys go with it);
 * - `POST /admin/consumers/:id/keys`: a new key, its plaintext in this response only;
 *   `DELETE /admin/consumers/:id/keys/:keyId`; `POST /admin/consumers/:id/keys/:keyId/rotate` `{ "grace"? }`.
 * Each change writes one audit line. Consumers the file declares answer 409 to every change.
 */
export function registerConsumerAdmin(routes: Map<string, AdminHandler>, host: AdminHost): void {
  const audit = createAudit(host.logger);
  const reg = host.consumers;
  const h = (fn: (c: Call) => Promise<void> | void): AdminHandler => async (req, res, url) => {
    const { config, file } = host.current;
    try {
      await fn({ req, res, url, config, file, audit, reg, actor: () => adminTokenId(config.admin.token) });
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e;
      if (e.kind === 'unavailable') adminProblem(req, res, 'store_unavailable', e.message, { headers: { 'retry-after': '1' } });
      else adminProblem(req, res, e.kind === 'not_found' ? 'not_found' : 'conflict', e.message);
    }
  };

  routes.set('GET /admin/consumers', h(({ res, url, config }) => {
    const source = url.searchParams.get('source');
    const out: unknown[] = [];
    if (source !== 'runtime') config.consumers.forEach((c) => out.push(fileView(c, config)));
    if (source !== 'file') for (const v of reg.list()) out.push(runtimeView(v, config));
    sendJson(res, 200, { store: reg.kind, version: reg.version, synced: reg.synced, consumers: out });
  }));

  routes.set('POST /admin/consumers', h(async (c) => {
    const body = fields(await readJson(c.req), ['id', 'plan']);
    const id = body.id;
    if (typeof id !== 'string' || !ID.test(id)) throw new AdminInputError('Give { "id": "<consumer id>" }: letters, digits, ".", "_", "-" or "@", at most 100, starting with a letter or digit.');
    const plan = planOf(body.plan, c.config, false);
    if (declared(c, id)) return;
    const v = await c.reg.create(id, plan ?? undefined);
    c.audit(await c.actor(), { action: 'consumer.create', consumer: id, plan: plan ?? null });
    c.res.setHeader('location', `/admin/consumers/${encodeURIComponent(id)}`);
    sendJson(c.res, 201, runtimeView(v, c.config));
  }));

  routes.set('GET /admin/consumers/:id', h((c) => {
    const id = segment(c.url, 3);
    const file = c.config.consumers.find((k) => k.id === id);
    if (file !== undefined) return sendJson(c.res, 200, fileView(file, c.config));
    const v = c.reg.get(id);
    if (v === undefined) throw new RegistryError('not_found', `No consumer "${id.slice(0, 100)}".`);
    sendJson(c.res, 200, runtimeView(v, c.config));
  }));

  routes.set('PATCH /admin/consumers/:id', h(async (c) => {
    const id = segment(c.url, 3);
    const body = fields(await readJson(c.req), ['plan']);
    if (!('plan' in body)) throw new AdminInputError('Give { "plan": "<plan>" }, or { "plan": null } for the config\'s defaults.plan.');
    const plan = planOf(body.plan, c.config, true);
    if (declared(c, id)) return;
    const { previous, written } = await c.reg.setPlan(id, plan ?? undefined);
    c.audit(await c.actor(), { action: 'consumer.plan', consumer: id, plan: plan ?? null, previousPlan: previous ?? null });
    sendJson(c.res, 200, runtimeView(written, c.config));
  }));

  routes.set('DELETE /admin/consumers/:id', h(async (c) => {
    const id = segment(c.url, 3);
    if (declared(c, id)) return;
    const revoked = await c.reg.remove(id);
    c.audit(await c.actor(), { action: 'consumer.delete', consumer: id, revokedKeys: revoked });
    sendJson(c.res, 200, { deleted: id, revokedKeys: revoked });
  }));

  routes.set('POST /admin/consumers/:id/keys', h(async (c) => {
    const id = segment(c.url, 3);
    fields(await readJson(c.req), []);
    if (declared(c, id)) return;
    const k = await c.reg.addKey(id);
    c.audit(await c.actor(), { action: 'key.create', consumer: id, key: k.keyId });
    sendJson(c.res, 201, { consumer: id, keyId: k.keyId, fingerprint: k.fingerprint, key: k.key, note: ONCE });
  }));

  routes.set('DELETE /admin/consumers/:id/keys/:keyId', h(async (c) => {
    const id = segment(c.url, 3);
    const keyId = segment(c.url, 5);
    if (declared(c, id)) return;
    await c.reg.revokeKey(id, keyId);
    c.audit(await c.actor(), { action: 'key.revoke', consumer: id, key: keyId });
    sendJson(c.res, 200, { consumer: id, revoked: keyId });
  }));

  routes.set('POST /admin/consumers/:id/keys/:keyId/rotate', h(async (c) => {
    const id = segment(c.url, 3);
    const keyId = segment(c.url, 5);
    const body = fields(await readJson(c.req), ['grace']);
    let grace = 0;
    if (body.grace !== undefined && body.grace !== null) {
      const g = parseDuration(body.grace);
      if (typeof g === 'string') throw new AdminInputError(`grace: ${g}`);
      if (g > MAX_GRACE) throw new AdminInputError('grace: at most 30d.');
      grace = g;
    }
    if (declared(c, id)) return;
    const { issued, oldExpiresAt } = await c.reg.rotateKey(id, keyId, grace);
    const expires = oldExpiresAt !== undefined ? new Date(oldExpiresAt).toISOString() : undefined;
    c.audit(await c.actor(), { action: 'key.rotate', consumer: id, key: keyId, newKey: issued.keyId, oldKeyExpiresAt: expires });
    sendJson(c.res, 201, {
      consumer: id, keyId: issued.keyId, fingerprint: issued.fingerprint, key: issued.key, note: ONCE,
      replaced: { keyId, revoked: expires === undefined, expiresAt: expires ?? null },
    });
  }));
}

const ONCE = 'The key is shown this once; only its SHA-256 hash is stored.';

interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  config: Config;
  file: string | undefined;
  audit: Audit;
  reg: ConsumerRegistry;
  actor: () => Promise<string>;
}

/** A consumer the file declares is the file's: answers 409 and returns true. */
function declared(c: Call, id: string): boolean {
  if (!c.config.consumers.some((k) => k.id === id)) return false;
  adminProblem(c.req, c.res, 'conflict', `Consumer "${id}" is declared in the config file${c.file !== undefined ? ` (${c.file})` : ''}; it is read-only here: change it in the file and reload.`);
  return true;
}

/** The body as an object with only the named members. */
function fields(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new AdminInputError('The body must be a JSON object.');
  const extra = Object.keys(body).filter((k) => !allowed.includes(k));
  if (extra.length) throw new AdminInputError(`Unknown member${extra.length > 1 ? 's' : ''} ${extra.map((k) => `"${k.slice(0, 40)}"`).join(', ')}${allowed.length ? `; allowed: ${allowed.join(', ')}` : ': this request takes no body'}.`);
  return body as Record<string, unknown>;
}

/** A plan the serving config configures; null (when allowed) or absent means `defaults.plan`. */
function planOf(v: unknown, config: Config, nullable: boolean): string | null | undefined {
  if (v === undefined || (nullable && v === null)) return v as null | undefined;
  const known = Object.keys(config.plans);
  if (typeof v !== 'string' || !Object.hasOwn(config.plans, v)) {
    throw new AdminInputError(`${typeof v === 'string' ? `Unknown plan "${v.slice(0, 100)}"` : 'plan must be a string'}; known: ${known.length ? known.join(', ') : '(the config has no plans)'}.`);
  }
  return v;
}

function segment(url: URL, i: number): string {
  try {
    return decodeURIComponent(url.pathname.split('/')[i] ?? '');
  } catch {
    return '';
  }
}

function effectivePlan(plan: string | undefined, config: Config): string | null {
  return (plan !== undefined && Object.hasOwn(config.plans, plan) ? plan : config.defaults.plan) ?? null;
}

function fileView(c: Config['consumers'][number], config: Config) {
  return {
    id: c.id, source: 'file', plan: c.plan ?? null, effectivePlan: effectivePlan(c.plan, config),
    keys: c.keys.map((hash, i) => ({ id: `file:${i}`, fingerprint: fingerprint(hash) })),
  };
}

function runtimeView(v: Versioned, config: Config) {
  const r = v.record;
  const now = Date.now();
  return {
    id: r.id, source: 'runtime', plan: r.plan ?? null, effectivePlan: effectivePlan(r.plan, config),
    createdAt: r.createdAt, updatedAt: r.updatedAt, version: v.version,
    keys: r.keys.filter((k) => k.expiresAt === undefined || k.expiresAt > now).map((k) => ({
      id: k.id, fingerprint: fingerprint(k.hash), createdAt: k.createdAt, expiresAt: k.expiresAt !== undefined ? new Date(k.expiresAt).toISOString() : null,
    })),
  };
}
