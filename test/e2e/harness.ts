// Runs an example from examples/<name>/gatehouse.yaml exactly as shipped, with its service URL
// environment variables pointed at stub services on ephemeral ports.
import { readFileSync } from 'node:fs';
import { parseDocument, type Document } from 'yaml';
import { SignJWT } from 'jose';
import { startGateway, type TestGateway } from '../helpers.ts';
import { startStubs, type Stub } from './stubs.ts';

export interface RunningExample {
  g: TestGateway;
  stubs: Map<string, Stub>;
  stub(name: string): Stub;
  close(): Promise<void>;
}

export interface ExampleOptions {
  /** Environment variable → stub name; one stub per distinct name. */
  services: Record<string, string>;
  /** Further environment (secrets, verify URLs); the process environment is never read. */
  env?: Record<string, string>;
  /** A derived config: edit the parsed file before it loads (e.g. shorten one timeout tier). */
  edit?: (doc: Document) => void;
  /** Stubs already running (shared between gateways of one suite). */
  stubs?: Map<string, Stub>;
}

export function exampleText(name: string, edit?: (doc: Document) => void): string {
  const text = readFileSync(new URL(`../../examples/${name}/gatehouse.yaml`, import.meta.url), 'utf8');
  if (!edit) return text;
  const doc = parseDocument(text);
  edit(doc);
  return doc.toString();
}

export async function startExample(name: string, opts: ExampleOptions): Promise<RunningExample> {
  const own = opts.stubs === undefined;
  const stubs = opts.stubs ?? (await startStubs([...new Set(Object.values(opts.services))]));
  const env: Record<string, string> = { GATEHOUSE_LISTEN: '127.0.0.1:0', GATEHOUSE_ADMIN_LISTEN: '127.0.0.1:0', GATEHOUSE_LOG_LEVEL: 'info', ...opts.env };
  for (const [v, s] of Object.entries(opts.services)) env[v] = stubs.get(s)!.url;
  let g: TestGateway;
  try {
    g = await startGateway(exampleText(name, opts.edit), { env });
  } catch (e) {
    if (own) await (stubs as Map<string, Stub> & { closeAll(): Promise<void> }).closeAll();
    throw e;
  }
  return {
    g,
    stubs,
    stub: (n) => stubs.get(n) ?? assertNever(n),
    close: async () => {
      await g.close();
      if (own) await Promise.all([...stubs.values()].map((s) => s.close()));
    },
  };
}

/** Sets `key` on the route named `route` in a parsed example (derived configs). */
export function setRouteKey(doc: Document, route: string, key: string, value: unknown): void {
  const routes = doc.get('routes') as { items: Array<{ get(k: string): unknown; set(k: string, v: unknown): void }> };
  const r = routes.items.find((x) => x.get('name') === route);
  if (!r) throw new Error(`no route named ${route}`);
  r.set(key, doc.createNode(value));
}

export function hs256(secret: string, claims: Record<string, unknown>, ttl = '10m'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime(ttl).sign(new TextEncoder().encode(secret));
}

/** Access-log lines of the gateway so far. */
export function accessLines(g: TestGateway): Array<Record<string, unknown>> {
  return g.logs.filter((l) => l.type === 'access');
}

function assertNever(n: string): never {
  throw new Error(`no stub named ${n}`);
}
