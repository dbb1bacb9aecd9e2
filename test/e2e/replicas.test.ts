import { test } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis } from '../support/redis-server.ts';
import { exactAcrossReplicas } from './replicas-scenario.ts';

test('three gateways sharing one Redis: exactly 100 of 1,000 concurrent requests pass a limit of 100; streamed token usage settles exactly', async (t) => {
  const redis = await startRedis();
  const raw = new Redis(redis.url);
  t.after(async () => { raw.disconnect(); await redis.stop(); });
  await exactAcrossReplicas(t, `url: ${redis.url}`, raw);
});
