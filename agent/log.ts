import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout (journald keeps them); secrets are redacted by path. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['*.token', '*.password', '*.key', '*.privateKey', 'config.health.token', 'config.mqtt.password'],
      censor: '[redacted]',
    },
  });
}
