import pino, { type Logger } from 'pino';
import { REDACT_PATHS, REDACTED, redactSecrets } from './security/redact.js';

export type { Logger };

/** JSON lines on stdout (journald keeps them); secrets are redacted by path. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [...new Set(['*.token', '*.password', '*.key', '*.privateKey', 'config.health.token', 'config.mqtt.password', ...REDACT_PATHS])],
      censor: REDACTED,
    },
    // Secrets at any depth, and payloads marked {sensitive: true} (agent/security/redact.ts).
    formatters: { log: (obj) => redactSecrets(obj) },
  });
}
