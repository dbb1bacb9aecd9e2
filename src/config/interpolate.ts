/**
 * `${VAR}` and `${VAR:-default}` in any string. `$${` escapes a literal `${`.
 * Returns the new string, or the name of the first missing variable.
 */
const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export type Interpolated = { value: string } | { missing: string };

export function interpolate(input: string, env: NodeJS.ProcessEnv): Interpolated {
  if (!input.includes('${')) return { value: input };
  let missing: string | undefined;
  const value = input.replace(REF, (whole, name: string | undefined, fallback: string | undefined) => {
    if (whole === '$${') return '${';
    const v = env[name!];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    if (v === '') return '';
    missing ??= name;
    return '';
  });
  return missing ? { missing } : { value };
}
