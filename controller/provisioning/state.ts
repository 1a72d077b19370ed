// The controller's provisioning state (docs/provisioning.md), in its own JSON file beside the
// controller's database: claims and their enrollment policy, issued device certificates,
// revocations, and the broker files to keep current. Kept apart from controller/store.ts on
// purpose. Every change is read-modify-write under a lock file and written atomically
// (temporary file, fsync, rename), so `edge-fleet enroll`/`revoke` and a running `serve`
// can change it side by side and a power cut leaves the old or the new file, never half.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface ClaimPolicy {
  /** The claim's name: its certificate's CN, its MQTT username, its topic level. */
  name: string;
  /** Device ids this claim may enroll: a regular expression, whole-id match. */
  pattern: string;
  /** When non-empty: only these device ids (on top of the pattern). */
  allow: string[];
  /** Fleet groups whose desired state the enrolled devices may read. */
  groups: string[];
  /** Lifetime of the device certificates issued (s). */
  lifetimeSeconds: number;
  /** Enrollments (first or rotation) allowed per hour for this claim. */
  perHour: number;
  enabled: boolean;
  /** Serial of the claim certificate, to revoke the claim itself. */
  serial?: string;
  createdAt: string;
}

export interface DeviceRecord {
  id: string;
  claim: string;
  groups: string[];
  /** Serials of the certificates issued, newest last; all but those in `revoked` are valid until they expire. */
  certs: Array<{ serial: string; notAfter: string; issuedAt: string }>;
  revoked?: string;
}

export interface BrokerFiles {
  /** The ACL file Mosquitto reads (acl_file); rewritten on every change. */
  aclFile: string;
  /** The base ACL (deploy/mosquitto/acl as installed, with the controller's and hand-made devices' blocks). */
  aclBase: string;
  /** The CRL Mosquitto reads (crlfile), or none. */
  crlFile?: string;
  /** argv run after the files change: "kill -HUP PID", "systemctl reload mosquitto". */
  reload: string[];
}

export interface ProvisioningState {
  version: 1;
  ca: { cert: string; key: string };
  broker: BrokerFiles;
  claims: Record<string, ClaimPolicy>;
  devices: Record<string, DeviceRecord>;
  /** Every revoked serial (devices' and claims'), for the CRL. */
  revokedSerials: Array<{ serial: string; at: string }>;
  /** Enrollment times (ms) per claim within the last hour, for the rate limit. */
  recent: Record<string, number[]>;
}

export const STATE_FILE = 'provisioning.json';

export class ProvisioningStore {
  readonly file: string;
  readonly #lock: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, STATE_FILE);
    this.#lock = path.join(dir, `${STATE_FILE}.lock`);
  }

  exists(): boolean {
    return existsSync(this.file);
  }

  read(): ProvisioningState {
    if (!this.exists()) throw new Error(`no provisioning state at ${this.file}; run "edge-fleet enroll init --dir ${this.dir} ..." first`);
    return JSON.parse(readFileSync(this.file, 'utf8')) as ProvisioningState;
  }

  /** Creates the state (refuses to overwrite one). */
  init(state: ProvisioningState): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (this.exists()) throw new Error(`provisioning state ${this.file} exists already`);
    this.#write(state);
  }

  /** Runs `change` on the current state under the lock; writes it when `change` returns true. */
  async update<T>(change: (s: ProvisioningState) => Promise<{ write: boolean; value: T }> | { write: boolean; value: T }): Promise<T> {
    this.read(); // a clear error when there is no state, before any lock file
    await this.#acquire();
    try {
      const s = this.read();
      const { write, value } = await change(s);
      if (write) this.#write(s);
      return value;
    } finally {
      rmSync(this.#lock, { force: true });
    }
  }

  async #acquire(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        closeSync(openSync(this.#lock, 'wx', 0o600));
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // A lock left by a process killed while holding it (older than 30 s) is taken over.
        try {
          if (Date.now() - statSync(this.#lock).mtimeMs > 30_000) rmSync(this.#lock, { force: true });
        } catch { /* gone meanwhile */ }
        if (Date.now() > deadline) throw new Error(`provisioning state ${this.file} is locked (${this.#lock}); another edge-fleet is changing it`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  #write(s: ProvisioningState): void {
    writeAtomic(this.file, JSON.stringify(s, null, 2) + '\n', 0o600);
  }
}

/** Writes a file so that a crash leaves the old or the new content (temp file, fsync, rename). */
export function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  try {
    const dfd = openSync(path.dirname(file), 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch { /* directories cannot be fsynced everywhere */ }
}
