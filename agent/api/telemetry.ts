// Local applications record telemetry through the agent, which stores it durably and forwards
// it to the fleet:
//   POST /v1/telemetry/:stream   {"payload": ANY, "priority"?: 0..9} or {"records": [{"payload", "priority"?}, ...]}
// The answer (201, {"seqs": [...]}) comes only once the records are committed to the SQLite
// buffer: from then on they survive a crash of the agent and reach the fleet at least once.
// A batch is all or nothing: any refusal (400, 503, 507) means none of its records was stored.
import type { FastifyInstance } from 'fastify';
import { STREAM_NAME as STREAM } from '../../protocol/names.js';
import { Errors } from '../errors.js';
import type { TelemetryBuffer } from '../telemetry/buffer.js';

const MAX_RECORDS = 1000;
const USAGE = 'send {"payload": <any JSON>, "priority"?: 0..9} or {"records": [{"payload": ..., "priority"?: ...}, ...]}';

interface Entry {
  payload: unknown;
  priority?: number;
}

function entries(body: unknown): Entry[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw Errors.BAD_REQUEST(`the body must be a JSON object; ${USAGE}`);
  const b = body as Record<string, unknown>;
  const list = 'records' in b ? b.records : [b];
  if (!Array.isArray(list) || list.length === 0) throw Errors.BAD_REQUEST(`"records" must be a non-empty array; ${USAGE}`);
  if (list.length > MAX_RECORDS) throw Errors.BAD_REQUEST(`at most ${MAX_RECORDS} records per request, got ${list.length}`);
  return list.map((e, i) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw Errors.BAD_REQUEST(`record ${i} must be an object; ${USAGE}`);
    const r = e as Record<string, unknown>;
    const extra = Object.keys(r).find((k) => k !== 'payload' && k !== 'priority' && !('records' in b && k === 'records'));
    if (extra) throw Errors.BAD_REQUEST(`record ${i}: unknown key "${extra}"; ${USAGE}`);
    if (!('payload' in r)) throw Errors.BAD_REQUEST(`record ${i}: missing "payload"; ${USAGE}`);
    if (r.priority !== undefined && !(Number.isInteger(r.priority) && (r.priority as number) >= 0 && (r.priority as number) <= 9)) {
      throw Errors.BAD_REQUEST(`record ${i}: "priority" must be a whole number 0..9, got ${JSON.stringify(r.priority)}`);
    }
    return { payload: r.payload, priority: r.priority as number | undefined };
  });
}

export function registerTelemetryRoutes(app: FastifyInstance, buffer: () => TelemetryBuffer): void {
  app.post<{ Params: { stream: string }; Body: unknown }>('/v1/telemetry/:stream', async (req, reply) => {
    const { stream } = req.params;
    if (!STREAM.test(stream)) throw Errors.BAD_REQUEST(`stream "${stream}" is not a valid name (lowercase letters, digits, _ and -, up to 32, starting with a letter)`);
    const list = entries(req.body);
    const buf = buffer();
    // All or nothing: a batch refused for one record stores none of the others, so the
    // client may fix it and send it again without duplicates under new sequence numbers.
    const seqs = buf.recordBatch(stream, list.map((e) => ({ payload: e.payload, opts: e.priority === undefined ? {} : { priority: e.priority } })));
    await buf.whenCommitted(seqs[seqs.length - 1]!);
    return reply.status(201).send({ stream, seqs });
  });

  app.get('/v1/telemetry', async () => buffer().stats());
}
