// Commands name things (a model, a version); they never carry a file path or a URL. The
// fleet link joins names into paths under dataDir, so a "name" like "../../etc" must never
// reach it: this check runs on every command before it acts, whatever the command's own
// argument schema says, so a command added later cannot forget it.
import { Errors } from '../errors.js';

const URL_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/?\//;
const MAX_DEPTH = 16;

/** Why a string argument is unsafe, or undefined when it is a plain name or value. */
export function unsafeArgument(s: string): string | undefined {
  if (s.includes('\0')) return 'contains a NUL character';
  if (URL_SCHEME.test(s)) return 'is a URL';
  if (s.includes('/') || s.includes('\\')) return 'contains a path separator';
  if (s === '.' || s === '..') return 'is a relative path';
  return undefined;
}

/** Throws EDGE_COMMAND_UNSAFE_ARGUMENT when any string inside args is a path or a URL. */
export function checkCommandArgs(args: unknown): void {
  const walk = (v: unknown, where: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw Errors.COMMAND_UNSAFE_ARGUMENT(where, `nests deeper than ${MAX_DEPTH} levels`);
    if (typeof v === 'string') {
      const why = unsafeArgument(v);
      if (why) throw Errors.COMMAND_UNSAFE_ARGUMENT(where, why);
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${where}[${i}]`, depth + 1));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, `${where}.${k}`, depth + 1);
    }
  };
  walk(args, 'args', 0);
}
