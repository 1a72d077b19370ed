// systemd's notify protocol (sd_notify(3)): READY=1 once ready, WATCHDOG=1 at half the
// watchdog interval from the event loop (a stuck loop stops the pings and systemd restarts
// us), STOPPING=1 on shutdown. The datagram is sent by the native addon, since node:dgram
// cannot send to a unix socket.
import type { Logger } from './log.js';
import { loadNative } from './native.js';

export class SystemdNotifier {
  #timer: NodeJS.Timeout | undefined;
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;

  constructor(log: Logger, env: NodeJS.ProcessEnv = process.env) {
    this.#log = log;
    this.#env = env;
  }

  get enabled(): boolean {
    return Boolean(this.#env.NOTIFY_SOCKET);
  }

  /** The watchdog interval systemd asked for, in ms, or undefined when none applies to us. */
  get watchdogMs(): number | undefined {
    const usec = Number(this.#env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.#env.WATCHDOG_PID;
    if (pid && Number(pid) !== process.pid) return undefined;
    return usec / 1000;
  }

  notify(state: string): void {
    if (!this.enabled) return;
    const rc = loadNative().sdNotify(state);
    if (rc < 0) this.#log.warn({ state, errno: -rc }, 'sd_notify failed');
  }

  ready(status?: string): void {
    this.notify(status ? `READY=1\nSTATUS=${status}` : 'READY=1');
    const ms = this.watchdogMs;
    if (ms !== undefined && !this.#timer) {
      this.notify('WATCHDOG=1');
      this.#timer = setInterval(() => this.notify('WATCHDOG=1'), Math.max(1, Math.floor(ms / 2)));
      this.#timer.unref();
    }
  }

  stopping(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.notify('STOPPING=1');
  }
}
