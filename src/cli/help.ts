import type { ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
export const COMMANDS: Record<string, { summary: string; usage: string; options: Options }> = {
  start: { summary: 'run the gateway (SIGHUP or POST /admin/reload reloads the config; --watch on file change)', usage: 'gatehouse start [--config gatehouse.yaml] [--port N] [--listen host:port] [--log-level L] [--workers N|auto] [--watch]', options: { config: { type: 'string', short: 'c' }, workers: { type: 'string', short: 'w' }, port: { type: 'string', short: 'p' }, listen: { type: 'string' }, 'log-level': { type: 'string' }, watch: { type: 'boolean' } } },
  demo: { summary: 'run the gateway on :8000 in front of bundled demo AI services (--services: only the services, on ports 8001-8003, for deploy/compose.yaml)', usage: 'gatehouse demo [--port 8000] [--host 127.0.0.1] [--services]', options: { port: { type: 'string', short: 'p' }, host: { type: 'string' }, services: { type: 'boolean' } } },
  validate: { summary: 'check a config file; exit 0 if it would start, 1 if not', usage: 'gatehouse validate [FILE] [--quiet]', options: { config: { type: 'string', short: 'c' }, quiet: { type: 'boolean', short: 'q' } } },
  check: { summary: 'check a config; --live: probe every route (safe methods, or its check: request), WebSocket handshakes, upstream health paths, DNS and TLS of targets; exit 1 naming any failure', usage: 'gatehouse check --live [--config gatehouse.yaml] [--gateway http://127.0.0.1:8000] [--timeout SECONDS] [--json]', options: { config: { type: 'string', short: 'c' }, live: { type: 'boolean' }, gateway: { type: 'string', short: 'g' }, timeout: { type: 'string' }, json: { type: 'boolean' } } },
  routes: { summary: 'print the compiled route table (--openapi: the public routes as an OpenAPI 3.1 document)', usage: 'gatehouse routes [FILE] [--json | --openapi]', options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, openapi: { type: 'boolean' } } },
  schema: { summary: 'print the config JSON Schema, every key described (for editor completion and hover docs); --markdown: the key reference of docs/configuration.md', usage: 'gatehouse schema [--markdown] > gatehouse.schema.json', options: { markdown: { type: 'boolean' } } },
  token: { summary: 'sign a development JWT with a provider\'s HS secret (refused in production)', usage: 'gatehouse token --sub ID [--plan P] [--ttl 1h] [--claim k=v ...] [--config gatehouse.yaml] [--provider NAME]', options: { sub: { type: 'string' }, plan: { type: 'string' }, ttl: { type: 'string' }, claim: { type: 'string', multiple: true }, config: { type: 'string', short: 'c' }, provider: { type: 'string' } } },
  'hash-key': { summary: 'print the sha256:<hex> form of an API key for consumers[].keys', usage: 'gatehouse hash-key [KEY] | gatehouse hash-key < keyfile | gatehouse hash-key --generate', options: { generate: { type: 'boolean', short: 'g' } } },
  import: { summary: 'print route YAML for every operation of an OpenAPI document', usage: 'gatehouse import openapi FILE|URL --upstream NAME [--prefix /P] [--auth public|jwt|apikey|any|forward] [--validate] [--save FILE]', options: { upstream: { type: 'string', short: 'u' }, prefix: { type: 'string' }, auth: { type: 'string' }, validate: { type: 'boolean' }, save: { type: 'string' } } },
};

export function usage(cmd?: string): string {
  if (cmd && COMMANDS[cmd]) return `${COMMANDS[cmd].summary}\n\nusage: ${COMMANDS[cmd].usage}\n`;
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return `gatehouse: an API gateway for AI services\n\nusage: gatehouse <command> [options]\n\n${Object.entries(COMMANDS).map(([c, s]) => `  ${c.padEnd(width)}  ${s.summary}`).join('\n')}\n\nRun "gatehouse <command> --help" for a command's options.\n`;
}
