// Every example loads and compiles as shipped (only its required secrets set), without a warning,
// and refuses to load when a required secret is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { Gateway } from '../../src/gateway.ts';
import { pino } from 'pino';

const secret = () => randomBytes(32).toString('base64url');
const REQUIRED: Record<string, Record<string, string>> = {
  machineagents: { JWT_SECRET: secret(), RECAPTCHA_SECRET_KEY: `6L${randomBytes(19).toString('hex')}` },
  'ai-workflow': { JWT_SECRET_KEY: secret() },
  automation: { JWT_SECRET_KEY: secret() },
  aivillage: { API_KEY_SHA256: hashApiKey(secret()) },
  'llm-providers': { OPENAI_API_KEY: `sk-proj-${secret()}`, ANTHROPIC_API_KEY: `sk-ant-${secret()}`, ANTHROPIC_BACKUP_API_KEY: `sk-ant-${secret()}`, CHAT_SERVICE_KEY_SHA256: hashApiKey(secret()), RAG_SERVICE_KEY_SHA256: hashApiKey(secret()) },
};

test('every example validates clean with only their required variables set', async () => {
  // What `gatehouse validate` does (test/cli/import-openapi.test.ts runs the CLI itself): load, then compile every route.
  for (const [name, vars] of Object.entries(REQUIRED)) {
    const loaded = loadConfigFile(`examples/${name}/gatehouse.yaml`, { env: vars });
    assert.deepEqual(loaded.warnings, [], `${name}: no warnings`);
    const gw = new Gateway(loaded.config, { logger: pino({ level: 'silent' }), defaultMetrics: false });
    assert.equal(gw.table.routes.length, loaded.config.routes.length, name);
    await gw.close();
  }
});

test('a missing secret stops the load and names the variable', () => {
  for (const [name, vars] of Object.entries(REQUIRED)) {
    for (const missing of Object.keys(vars)) {
      const env: Record<string, string> = { ...vars }; // never the process environment
      delete env[missing];
      assert.throws(() => loadConfigFile(`examples/${name}/gatehouse.yaml`, { env }), (e: unknown) =>
        e instanceof ConfigError && e.issues.some((i) => i.message.includes(`environment variable ${missing} is not set`)), `${name} without ${missing}`);
    }
  }
});
