// Compiling one policy outside a runtime (unit tests, bench/): the environment a generation would give it.
import { pino } from 'pino';
import { loadConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { CompileEnv } from '../../src/pipeline/policy.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { TrustedProxies } from '../../src/server/client-ip.ts';
import { MemoryStore } from '../../src/state/memory.ts';
import { ResourceSet } from '../../src/runtime/resources.ts';
import { JwtVerifier } from '../../src/auth/jwt-verifier.ts';
import { JwksCache } from '../../src/auth/jwks.ts';

export function compileEnv(over: Partial<CompileEnv> = {}): CompileEnv {
  const logger = over.logger ?? pino({ level: 'silent' });
  return {
    logger,
    metrics: new Metrics({ defaultMetrics: false }),
    store: new MemoryStore(),
    consumers: { size: 0, lookupDigest: () => null },
    storeWarn: () => {},
    trusted: new TrustedProxies([]),
    identityHeaders: new Set(),
    resources: new ResourceSet(null),
    upstreams: new Map(),
    shared: new Map(),
    ...over,
  };
}

/** A config from YAML text (parsed, normalized, checked), without `${VAR}`s from the environment. */
export function configFrom(yaml: string): Config {
  return loadConfigText(yaml, 'test.yaml', { env: {} }).config;
}

/** The verifier a generation would build for `config`'s auth section. */
export function verifierFor(config: Config): JwtVerifier {
  const logger = pino({ level: 'silent' });
  return new JwtVerifier({
    auth: config.auth,
    plans: Object.keys(config.plans),
    defaultPlan: config.defaults.plan,
    jwks: (p) => new JwksCache({ name: p.name, uri: p.jwksUri!, logger, ...p.jwksCache }),
  });
}
