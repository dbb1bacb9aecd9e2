import type { Policy } from './types.ts';

/** Until identity policies exist, a route that asks for auth must not load as if it were public. */
export const authPlaceholder: Policy = {
  name: 'auth',
  compile({ route, config }) {
    const auth = route.auth ?? config.defaults.auth ?? 'public';
    if (auth !== 'public') throw new Error(`auth: ${auth} is not available in this build`);
    return undefined;
  },
};
