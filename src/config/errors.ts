/**
 * A problem a check found, by key path (`['routes', 3, 'match', 'path']`); the loader turns the path into
 * file:line:col. A warning is reported and the config still loads.
 */
export interface Issue { path: PropertyKey[]; message: string; warning?: boolean }

/** A config that cannot load. Carries every problem found, each with its position. */
export interface ConfigIssue {
  file?: string;
  line?: number;
  col?: number;
  /** Dotted key path, e.g. `routes[3].match.path`. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.file ? `${i.file}${i.line ? `:${i.line}:${i.col ?? 1}` : ''} ` : '';
  return `${where}${i.path || '(root)'}: ${i.message}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}
