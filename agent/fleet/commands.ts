// Commands from the fleet: parse, validate, run once per id, and answer. Everything that can
// go wrong with a request becomes an error reply; nothing here throws to the caller.
import { createRequire } from 'node:module';
import type { Ajv, ValidateFunction } from 'ajv';
import { EdgeError, describe } from '../errors.js';
import { FleetErrors } from '../errors.js';

export interface CommandReply {
  id: string | null;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

export interface CommandSpec<A = unknown> {
  /** JSON schema of args; omitted = no args accepted beyond an empty object. */
  args?: object;
  description: string;
  run(args: A): Promise<unknown> | unknown;
}

// Ajv is loaded with the first command that has args: its import is start-up time otherwise.
let ajv: Ajv | undefined;
const ID_MAX = 128;

export class CommandRouter {
  readonly #specs = new Map<string, { spec: CommandSpec<never>; validate?: ValidateFunction | null }>();
  /** Replies by request id, oldest first (a Map keeps insertion order), capped. */
  readonly #replies = new Map<string, Promise<CommandReply>>();
  #handled = 0;
  #errors = 0;
  #repeats = 0;

  /**
   * @param check runs on every new request (the whole parsed message) before it acts; it
   *   throws to refuse, e.g. the security policy's command signatures.
   */
  constructor(private readonly maxPayloadBytes: number, private readonly check?: (msg: Record<string, unknown>) => void, private readonly cacheSize = 512) {}

  register<A>(name: string, spec: CommandSpec<A>): void {
    // Compiled on the first request that needs it: Ajv's code generation is start-up time
    // (tens of ms per schema on a Pi) spent before READY=1 on commands that may never come.
    this.#specs.set(name, { spec: spec as CommandSpec<never>, validate: spec.args ? null : undefined });
  }

  #validator(entry: { spec: CommandSpec<never>; validate?: ValidateFunction | null }): ValidateFunction | undefined {
    if (entry.validate === null) {
      ajv ??= new (createRequire(import.meta.url)('ajv') as typeof import('ajv')).Ajv({ allErrors: true, useDefaults: true, strict: false });
      entry.validate = ajv.compile(entry.spec.args!);
    }
    return entry.validate;
  }

  names(): string[] {
    return [...this.#specs.keys()].sort();
  }

  stats(): { handled: number; errors: number; repeats: number; cached: number } {
    return { handled: this.#handled, errors: this.#errors, repeats: this.#repeats, cached: this.#replies.size };
  }

  /** Handles one request payload; always resolves to the reply to send. */
  async handle(payload: Buffer): Promise<CommandReply> {
    this.#handled++;
    const parsed = this.#parse(payload);
    if ('ok' in parsed) {
      this.#errors++;
      return parsed;
    }
    const { id, name, args, msg } = parsed;
    const earlier = this.#replies.get(id);
    if (earlier) {
      // The same request again (a retry after a lost reply): answer, do not act twice.
      this.#repeats++;
      return earlier;
    }
    if (this.check) {
      try {
        this.check(msg);
      } catch (err) {
        // Not cached: a refused request did nothing, and must not block a good one with its id.
        this.#errors++;
        return fail(id, err instanceof EdgeError ? err : FleetErrors.BAD_COMMAND(describe(err)));
      }
    }
    const reply = this.#run(id, name, args);
    this.#replies.set(id, reply);
    while (this.#replies.size > this.cacheSize) this.#replies.delete(this.#replies.keys().next().value!);
    const r = await reply;
    if (!r.ok) this.#errors++;
    return r;
  }

  #parse(payload: Buffer): { id: string; name: string; args: unknown; msg: Record<string, unknown> } | CommandReply {
    if (payload.length > this.maxPayloadBytes) {
      return fail(null, FleetErrors.PAYLOAD_TOO_LARGE(payload.length, this.maxPayloadBytes));
    }
    let msg: unknown;
    try {
      msg = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return fail(null, FleetErrors.BAD_COMMAND(`not valid JSON (${describe(err)})`));
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      return fail(null, FleetErrors.BAD_COMMAND(`got ${Array.isArray(msg) ? 'an array' : typeof msg}`));
    }
    const { id, name, args } = msg as Record<string, unknown>;
    if (typeof id !== 'string' || id.length === 0 || id.length > ID_MAX) {
      return fail(typeof id === 'string' ? id.slice(0, ID_MAX) : null,
        FleetErrors.BAD_COMMAND(`"id" must be a string of 1..${ID_MAX} characters, got ${JSON.stringify(id)?.slice(0, 40) ?? 'nothing'}`));
    }
    if (typeof name !== 'string') return fail(id, FleetErrors.BAD_COMMAND(`"name" must be a string, got ${typeof name}`));
    if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
      return fail(id, FleetErrors.BAD_ARGS(name, `"args" must be an object, got ${Array.isArray(args) ? 'an array' : args === null ? 'null' : typeof args}`));
    }
    return { id, name, args: args ?? {}, msg: msg as Record<string, unknown> };
  }

  async #run(id: string, name: string, args: unknown): Promise<CommandReply> {
    const entry = this.#specs.get(name);
    if (!entry) return fail(id, FleetErrors.UNKNOWN_COMMAND(name, this.names()));
    const validate = this.#validator(entry);
    if (validate && !validate(args)) {
      const problems = (validate.errors ?? []).map((e) => `${e.instancePath || 'args'} ${e.message ?? 'is invalid'}`).join('; ');
      return fail(id, FleetErrors.BAD_ARGS(name, problems));
    }
    try {
      const result = await entry.spec.run(args as never);
      return { id, ok: true, result: result ?? null };
    } catch (err) {
      return fail(id, err instanceof EdgeError ? err : FleetErrors.COMMAND_FAILED(`${name} failed: ${describe(err)}`));
    }
  }
}

function fail(id: string | null, err: EdgeError): CommandReply {
  return { id, ok: false, error: { code: err.code, message: err.message } };
}
