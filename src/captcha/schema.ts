import { z } from 'zod';
import { obj, duration } from '../config/zod-helpers.ts';

/** One entry of the `captcha:` section (a route names it with `captcha: <name>`). A leaf module. */
export const captchaSchema = obj({
  provider: z.enum(['recaptcha-v2', 'recaptcha-v3', 'hcaptcha', 'turnstile']).describe('The captcha service: recaptcha-v2, recaptcha-v3, hcaptcha or turnstile.'),
  secret: z.string().describe('The provider\'s server-side secret, as `${VAR}`.'),
  minScore: z.number().min(0).max(1).prefault(0.5).describe('Lowest accepted score (reCAPTCHA v3 only).'),
  action: z.string().optional().describe('The action the widget declared (reCAPTCHA v3, Turnstile); another action is refused.'),
  hostnames: z.array(z.string()).optional().describe('Sites the token may have been solved on.'),
  tokenField: z.string().optional().describe('Body field carrying the token: JSON dot path, urlencoded or multipart field.'),
  tokenHeader: z.string().optional().describe('Request header carrying the token (tried first when both are set).'),
  verifyUrl: z.string().url().optional().describe('Verification endpoint (default per provider).'),
  timeout: duration.prefault('5s').describe('Timeout of the verification call.'),
  maxAge: duration.prefault('5m').describe('A token solved longer ago than this (the provider\'s challenge_ts) is refused with 403; providers accept tokens for a few minutes, so a replayed one stays valid that long.'),
}).describe('A captcha verifier.');
export type CaptchaConfig = z.output<typeof captchaSchema>;
