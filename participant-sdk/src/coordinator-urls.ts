import { z } from 'zod';

/** An http(s) base URL (the coordinator appends `/v1/...`). */
export const httpUrlSchema = z.string().regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, 'must be an http(s) URL');

/** Several coordinator instances of one cluster, in order of preference. */
export const httpUrlListSchema = z.array(httpUrlSchema).min(1, 'must list at least one URL');

/**
 * The coordinator base URLs of options that take either one URL (`single`)
 * or a list (`many`), without trailing slashes. For a zod transform: an
 * invalid combination is reported through `ctx`, naming the field.
 */
export function resolveCoordinatorUrls(
  single: string | undefined,
  many: readonly string[] | undefined,
  names: { single: string; many: string },
  ctx: z.RefinementCtx,
): string[] {
  const fail = (path: Array<string | number>, message: string): never => {
    ctx.addIssue({ code: 'custom', path, message });
    return z.NEVER;
  };
  if (single !== undefined && many !== undefined) return fail([names.many], `cannot be given with ${names.single}: give one of them`);
  if (single === undefined && many === undefined) return fail([names.single], `is required (or ${names.many}, a list)`);
  const urls = (many ?? [single as string]).map((u) => u.replace(/\/+$/, ''));
  const repeated = urls.findIndex((u, i) => urls.indexOf(u) !== i);
  if (repeated >= 0) return fail([names.many, repeated], `repeats ${urls[repeated]}`);
  return urls;
}
