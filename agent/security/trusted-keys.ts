// Trusted public keys from config: each entry is PEM text or the path of a PEM file (made
// absolute by the config loader). Several keys are trusted at once so keys can be rotated:
// add the new key, re-sign and roll out, then remove the old one.
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { Errors } from '../errors.js';
import { trustedKeySet } from './signing.js';

export function isPem(entry: string): boolean {
  return entry.trimStart().startsWith('-----BEGIN');
}

/** The PEM texts of config entries; a path that cannot be read is a config error naming it. */
export function readKeyEntries(entries: readonly string[], what: string): string[] {
  return entries.map((e, i) => {
    if (isPem(e)) return e;
    try {
      return readFileSync(e, 'utf8');
    } catch (err) {
      throw Errors.CONFIG_UNREADABLE(e, `${what}[${i}] is neither PEM text nor a readable file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  });
}

/** Parsed ed25519 keys by keyId; throws EDGE_CONFIG_INVALID naming a bad entry. */
export function loadTrustedKeys(entries: readonly string[], what: string): Map<string, KeyObject> {
  const pems = readKeyEntries(entries, what);
  try {
    return trustedKeySet(pems, what);
  } catch (err) {
    throw Errors.CONFIG_INVALID(what, [(err as Error).message]);
  }
}
