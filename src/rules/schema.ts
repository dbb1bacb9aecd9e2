import { z } from 'zod';
import { obj, explainUnion, duration } from '../config/zod-helpers.ts';

/**
 * The config shapes of the request rules (docs/request-rules.md), as a leaf: the policies in src/policies/ compile
 * them, src/config/schema.ts composes them, and the upstreams section (src/upstreams/schema.ts) takes header
 * rules too, so none of them may live in a module that imports the kernel.
 */

/**
 * A value a rule writes: a literal (`${ENV}` is already interpolated at load), or `{ from: REF }` read per request,
 * REF being `claim.<path>`, `identity.id | identity.plan | identity.consumer`, `header.<name>`, `query.<name>`,
 * `path.<name>` or `body.<name>` (src/rules/refs.ts).
 */
export const valueSchema = z.union([z.string(), z.number(), z.boolean(), obj({ from: z.string().describe('claim.<name>, identity.id | plan | consumer, header.<name>, query.<name>, path.<name> or body.<name>, read per request.') })], { error: explainUnion('expected a literal (string, number, boolean) or { from: claim.<name> | identity.id | header.<name> | query.<name> | path.<name> | body.<name> }') });
export type ValueSpec = z.output<typeof valueSchema>;

const headerEdits = obj({
  set: z.record(z.string(), valueSchema).optional().describe('Header → value, replacing any header of that name.'),
  add: z.record(z.string(), valueSchema).optional().describe('Header → value, added beside existing ones.'),
  remove: z.array(z.string()).optional().describe('Headers removed.'),
});
/** `headers: { request: { set, add, remove }, response: { set, add, remove } }` on a route or an upstream. */
export const headerRulesSchema = obj({
  request: headerEdits.optional().describe('Edits of the request sent upstream.'),
  response: headerEdits.optional().describe('Edits of the response sent to the client.'),
});
export type HeaderRules = z.output<typeof headerRulesSchema>;
export type HeaderEdits = z.output<typeof headerEdits>;

/** `transform: { body: { keep, remove, rename, set } }`. */
export const transformSchema = obj({
  body: obj({
    keep: z.array(z.string().min(1)).optional().describe('Keep only these fields.'),
    remove: z.array(z.string().min(1)).optional().describe('Remove these fields.'),
    rename: z.record(z.string().min(1), z.string().min(1)).optional().describe('Field → new name.'),
    set: z.record(z.string().min(1), valueSchema).optional().describe('Field → literal or { from: REF }.'),
  }).describe('Edits of a JSON, urlencoded or multipart body: keep, remove, rename, set, in that order.'),
});
export type TransformConfig = z.output<typeof transformSchema>;

/** `bind: { body.user_id: claim.sub, query.user_id: { from: claim.sub, mode: inject } }`. */
export const bindSchema = z.record(z.string(), z.union([
  z.string().transform((from) => ({ from, mode: 'check' as 'check' | 'inject' })),
  obj({
    from: z.string().describe('claim.<name> or identity.id | plan | consumer.'),
    mode: z.enum(['check', 'inject']).prefault('check').describe('check: 403 forbidden when the request\'s field disagrees with the identity (every occurrence compared); inject: the identity\'s value replaces it.'),
  }),
], { error: explainUnion('expected claim.<name> (or identity.id), or { from, mode: check | inject }') }));
export type BindConfig = z.output<typeof bindSchema>;

/** `enabled: ${ENABLE_FILE_UPLOAD:-true}`: a boolean, or the text a quoted variable leaves. */
export const enabledSchema = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  return ['true', 'yes', 'on', '1'].includes(s) ? true : ['false', 'no', 'off', '0', ''].includes(s) ? false : v;
}, z.boolean({ error: (iss) => `expected true or false${typeof iss.input === 'string' ? `, got "${iss.input}"` : ''}` }));

/** What a disabled route answers: 404 as if it did not exist (default), or 503 with a message. */
export const whenDisabledSchema = obj({
  status: z.union([z.literal(404), z.literal(503)]).prefault(404).describe('404 (as an unknown path) or 503.'),
  message: z.string().optional().describe('Detail of the 503 answer.'),
  retryAfter: duration.optional().describe('Retry-After of the 503 answer.'),
}).describe('What a disabled route answers.');
export type WhenDisabled = z.output<typeof whenDisabledSchema>;
