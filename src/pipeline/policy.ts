import { createHash } from 'node:crypto';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { TrustedProxies } from '../server/client-ip.ts';
import type { Store } from '../state/store.ts';
import type { Issue } from '../config/errors.ts';
import type { Identity, Step } from './context.ts';
import type { Upstream } from '../upstreams/upstream.ts';

/**
 * Objects a generation builds once and that the next generation may take over when the config that made them
 * did not change (JWKS caches, captcha verifiers, upstream pools): `get` returns the previous generation's
 * object for the same key, or makes one. What a new generation does not take over is closed once the old one
 * has finished its last request.
 */
export interface Resources {
  get<T>(key: string, make: () => T, close?: (value: T) => unknown): T;
}

/** A resource key for config that made it: kind and name, plus a digest of the settings (which may hold secrets). */
export function resourceKey(kind: string, name: string, settings: unknown): string {
  return `${kind}:${name}:${createHash('sha256').update(JSON.stringify(settings) ?? '').digest('base64url').slice(0, 22)}`;
}

/** A consumer as an API key resolves it: the identity and the upstream headers (flat [name, value, ...]). */
export interface KeyedIdentity {
  readonly identity: Identity;
  readonly headers: readonly string[];
}

/** How one generation reads a consumer's plan: a plan it configures, else its `defaults.plan`. */
export interface PlanView {
  readonly known: ReadonlySet<string>;
  readonly defaultPlan: string | undefined;
}

/**
 * Consumers created while the gateway runs (src/consumers/registry.ts, a Runtime part that outlives reloads).
 * The lookup answers from memory, synchronously; change events keep that memory current.
 */
export interface RuntimeConsumers {
  /** Keys held right now (0: nothing to look up). */
  readonly size: number;
  /** The consumer owning the key whose SHA-256 digest this is, or null (unknown, revoked or expired). */
  lookupDigest(digest: Buffer, plans: PlanView): KeyedIdentity | null;
}

/**
 * What compiling a route has at hand: the runtime's long-lived pieces (logger, metric registry, state store)
 * and the generation's own (trusted proxies, the identity headers every route strips, carried-over resources).
 */
export interface CompileEnv {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly store: Store;
  /** Runtime consumers (the admin API's), consulted after the file's consumers. */
  readonly consumers: RuntimeConsumers;
  /** One throttled warning per runtime for store failures (a line per 10 s in an outage, not one per request). */
  readonly storeWarn: (msg: string, err?: unknown) => void;
  readonly trusted: TrustedProxies;
  /** Request headers the gateway sets from identity; inbound copies are always removed. Policies add to it at compile time. */
  readonly identityHeaders: Set<string>;
  readonly resources: Resources;
  /** The generation's upstreams by name (model routing picks among several per request). */
  readonly upstreams: ReadonlyMap<string, Upstream>;
  /** Compile-time slots for state a policy shares between its routes within one generation, keyed by policy name. */
  readonly shared: Map<string, unknown>;
}

export interface PolicyContext<C, R> {
  /** The whole (normalized) config, as far as this policy reads it. */
  readonly config: C;
  /** The route being compiled (normalized: `name`, `auth`, `timeouts` and limits are resolved). */
  readonly route: R;
  readonly env: CompileEnv;
}

/**
 * A policy: its config keys (exported from its own file and composed into the route schema by
 * src/config/schema.ts), its load-time check, and its behaviour compiled per route. `C` and `R` are the parts
 * of the config and of a route it reads, declared structurally so a policy never imports the composed config
 * type (which imports it). `check` reports every problem with its key path (the loader adds file:line);
 * `compile` trusts checked input and returns no step when the route does not use the policy.
 */
export interface Policy<C = never, R = never> {
  readonly name: string;
  readonly check?: (config: C, out: Issue[]) => void;
  readonly compile: (ctx: PolicyContext<C, R>) => Step | undefined;
}
