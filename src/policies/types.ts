import type { Config, RouteConfig } from '../config/schema.ts';
import type { RequestContext } from '../server/context.ts';
import type { GatewayServices } from '../services.ts';

/**
 * A step of a route's pipeline. Returns nothing when it is done synchronously, a promise when it
 * must wait (JWKS, Redis, captcha). It rejects a request by throwing (or rejecting with) a GatewayError.
 */
export type Step = (ctx: RequestContext) => void | Promise<void>;

export interface PolicyContext {
  config: Config;
  route: RouteConfig;
  routeName: string;
  services: GatewayServices;
}

/** A policy: its behaviour compiled per route at config load. `compile` returns no step when the route does not use it. */
export interface Policy {
  name: string;
  compile(ctx: PolicyContext): Step | undefined;
}
