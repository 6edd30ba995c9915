import { createHash } from 'node:crypto';

const MAX_LABEL = 63;

/**
 * A DNS-1123 label for a child object: `base` and `suffix` joined with "-" when that fits in 63
 * characters, otherwise `base` cut short plus an 8-character hash of the full name, so two long
 * names never collide and the same input always gives the same name (cdk8s names.ts does the same).
 */
export function childName(base: string, suffix?: string): string {
  const full = suffix ? `${base}-${suffix}` : base;
  const clean = full.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  if (clean.length <= MAX_LABEL && clean === full) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  const room = MAX_LABEL - hash.length - 1 - (suffix ? suffix.length + 1 : 0);
  const head = base.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, room).replace(/-+$/, '');
  return [head, hash, suffix].filter(Boolean).join('-');
}
