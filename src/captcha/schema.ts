import { z } from 'zod';
import { obj, duration } from '../config/zod-helpers.ts';

/** One entry of the `captcha:` section (a route names it with `captcha: <name>`). A leaf module. */
export const captchaSchema = obj({
  provider: z.enum(['recaptcha-v2', 'recaptcha-v3', 'hcaptcha', 'turnstile']),
  secret: z.string(),
  minScore: z.number().min(0).max(1).prefault(0.5),
  action: z.string().optional(),
  hostnames: z.array(z.string()).optional(),
  tokenField: z.string().optional(),
  tokenHeader: z.string().optional(),
  verifyUrl: z.string().url().optional(),
  timeout: duration.prefault('5s'),
  maxAge: duration.prefault('5m').describe('A token solved longer ago than this (the provider\'s challenge_ts) is refused with 403; providers accept tokens for a few minutes, a replayed one stays valid that long.'),
});
export type CaptchaConfig = z.output<typeof captchaSchema>;
