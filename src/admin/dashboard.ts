import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { AdminHandler, AdminHost } from './http.ts';
import { adminProblem } from './http.ts';

/**
 * The dashboard's page and assets (src/admin/dashboard/, copied to dist/ by the build, shipped in the package).
 * They hold no data: the page asks the admin API for everything, with the token the operator typed into it, so
 * they are served without the token. The policy below allows the page's own script, style and API calls and
 * nothing else: no inline code, no other origin, no framing.
 */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const TYPES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

const HEADERS = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-cache',
};

const DIR = new URL('./dashboard/', import.meta.url);
const files = new Map<string, Buffer>();

/** Read once, on first use: a few KB that never change while the process runs. */
function file(name: string): Buffer {
  let b = files.get(name);
  if (b === undefined) { b = readFileSync(new URL(name, DIR)); files.set(name, b); }
  return b;
}

function send(res: ServerResponse, type: string, body: Buffer): void {
  res.writeHead(200, { ...HEADERS, 'content-type': type, 'content-length': body.length });
  res.end(body);
}

/** `GET /`: the page. It says whether the API needs a token, so it asks for one before its first call. */
export function dashboardPage(host: AdminHost): AdminHandler {
  const pages = new Map<boolean, Buffer>();
  return (_req, res) => {
    const needsToken = host.current.config.admin.token !== '';
    let page = pages.get(needsToken);
    if (page === undefined) {
      page = Buffer.from(file('index.html').toString('utf8').replace('{{AUTH}}', needsToken ? 'token' : 'none'));
      pages.set(needsToken, page);
    }
    send(res, 'text/html; charset=utf-8', page);
  };
}

/** `GET /ui/:file`: the page's script, style sheet and icon. */
export const dashboardAsset: AdminHandler = (req, res, url) => {
  const name = url.pathname.slice('/ui/'.length);
  const type = Object.hasOwn(TYPES, name) ? TYPES[name] : undefined;
  if (type === undefined) return adminProblem(req, res, 'not_found', `No dashboard file "${name.slice(0, 100)}".`);
  send(res, type, file(name));
};
