// Private key files must be readable by their owner only: a key that other local users can
// read is a key that can impersonate this device to the broker (or sign as the fleet).
import { statSync } from 'node:fs';
import { Errors } from '../errors.js';

/** Permission bits that must be clear on a private key file: any access by group or others. */
export const FORBIDDEN_KEY_MODE = 0o077;

/**
 * Throws EDGE_KEY_FILE_INSECURE when the file is missing, not a regular file, or has any
 * group/other permission. `what` names the config key, for the message.
 */
export function checkPrivateKeyFile(file: string, what = 'private key'): void {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw Errors.KEY_FILE_INSECURE(file, `${what} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!st.isFile()) throw Errors.KEY_FILE_INSECURE(file, `${what} is not a regular file`);
  const bad = st.mode & FORBIDDEN_KEY_MODE;
  if (bad !== 0) {
    const who = [bad & 0o070 ? 'its group' : '', bad & 0o007 ? 'other users' : ''].filter(Boolean).join(' and ');
    throw Errors.KEY_FILE_INSECURE(file,
      `${what} has mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}, so ${who} can access it; run "chmod 600 ${file}" (and chown it to the agent's user)`);
  }
}
