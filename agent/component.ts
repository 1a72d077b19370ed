import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Config } from './config/schema.js';
import type { Logger } from './log.js';

/**
 * A part of the agent with a lifecycle. Constructors do nothing; start() acquires,
 * stop() releases (and must be safe to call after a failed start).
 */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Why this component is not ready, or undefined when it is. */
  notReady?(): string | undefined;
  /** This component's part of GET /v1/status. */
  status?(): unknown;
}

/** What every component is built with. */
export interface AgentContext {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Registry;
  /** The local HTTP server; components add their routes before it listens. */
  readonly http: FastifyInstance;
  readonly startedAt: number;
}
