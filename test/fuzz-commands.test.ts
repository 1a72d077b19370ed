// Fuzzing the command parser a device runs on every message of its command topic, and the
// signed-command check in front of it: random bytes, random JSON, mutated valid commands and
// forged signatures. The router always answers (never throws, never rejects), a refusal is an
// error reply with a stable code and a sentence, and nothing runs unless the input was valid.
import t from 'tap';
import fc from 'fast-check';
import { Type } from '@sinclair/typebox';
import { CommandRouter, type CommandReply } from '../agent/fleet/commands.js';
import { generateKeyPair, trustedKeySet } from '../agent/security/signing.js';
import { ReplayGuard, signCommand, verifyCommand } from '../agent/security/command-signing.js';
import { RUNS, mutated, mutatedText, refusalOf, watchUnhandled } from './helpers/fuzz.js';

const unhandled = watchUnhandled();
const ran: unknown[] = [];
const router = new CommandRouter(64 * 1024);
router.register('ping', { description: 'ping', run: () => ({ pong: true }) });
router.register('set', {
  description: 'set a value',
  args: Type.Object({ key: Type.String({ pattern: '^[a-z]{1,8}$' }), value: Type.Integer({ minimum: 0, maximum: 100 }) }, { additionalProperties: false }),
  run: (args) => { ran.push(args); return { ok: true }; },
});
router.register('fails', { description: 'always throws', run: () => { throw new TypeError('inner failure'); } });

function checkReply(r: CommandReply): void {
  if (typeof r !== 'object' || r === null || typeof r.ok !== 'boolean') throw new Error(`not a reply: ${JSON.stringify(r)}`);
  if (!(r.id === null || typeof r.id === 'string')) throw new Error(`reply id is ${typeof r.id}`);
  if (!r.ok) {
    if (!r.error || !/^EDGE_[A-Z0-9_]+$/.test(r.error.code) || r.error.message.length < 8) throw new Error(`unclear error reply: ${JSON.stringify(r.error)}`);
  }
  JSON.stringify(r); // the reply must be serialisable to send
}

const validCommand = fc.oneof(
  fc.record({ id: fc.string({ minLength: 1, maxLength: 20 }), name: fc.constant('ping') }),
  fc.record({ id: fc.string({ minLength: 1, maxLength: 20 }), name: fc.constant('set'), args: fc.record({ key: fc.constantFrom('a', 'gain', 'zz'), value: fc.integer({ min: 0, max: 100 }) }) }),
).map((c) => JSON.stringify(c));

t.test('random bytes and random JSON always get a reply', async (t) => {
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (b) => checkReply(await router.handle(Buffer.from(b)))), { numRuns: RUNS });
  await fc.assert(fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (v) => checkReply(await router.handle(Buffer.from(JSON.stringify(v) ?? 'null')))), { numRuns: RUNS });
  await fc.assert(fc.asyncProperty(
    fc.record({ id: fc.anything(), name: fc.oneof(fc.constantFrom('ping', 'set', 'fails', '__proto__', 'constructor', 'toString'), fc.anything()), args: fc.anything() }, { requiredKeys: [] }),
    async (c) => {
      let text: string | undefined;
      try { text = JSON.stringify(c); } catch { return; } // BigInt and cycles have no JSON form
      checkReply(await router.handle(Buffer.from(text ?? 'null')));
    }), { numRuns: RUNS });
  t.pass(`${3 * RUNS} inputs answered`);
});

t.test('mutated valid commands: answered, and "set" runs only with valid args', async (t) => {
  ran.length = 0;
  await fc.assert(fc.asyncProperty(mutatedText(validCommand), async (text) => {
    const before = ran.length;
    const r = await router.handle(Buffer.from(text));
    checkReply(r);
    if (ran.length > before) {
      const a = ran.at(-1) as { key?: unknown; value?: unknown };
      if (typeof a.key !== 'string' || !/^[a-z]{1,8}$/.test(a.key) || !Number.isInteger(a.value)) throw new Error(`ran with invalid args ${JSON.stringify(a)}`);
    }
  }), { numRuns: RUNS * 2 });
  await fc.assert(fc.asyncProperty(mutated(validCommand.map((s) => new Uint8Array(Buffer.from(s)))), async (b) => checkReply(await router.handle(Buffer.from(b)))), { numRuns: RUNS });
  t.pass(`${3 * RUNS} mutated commands answered`);
});

t.test('a command that throws and an oversized payload get error replies', async (t) => {
  const r = await router.handle(Buffer.from(JSON.stringify({ id: 'f1', name: 'fails' })));
  t.match(r, { id: 'f1', ok: false, error: { code: /^EDGE_/ } });
  const big = await router.handle(Buffer.alloc(64 * 1024 + 1, 0x20));
  t.match(big, { ok: false, error: { code: 'EDGE_FLEET_PAYLOAD_TOO_LARGE' } });
});

t.test('forged, mutated and random signatures are refused with EDGE_COMMAND_SIGNATURE', async (t) => {
  const key = generateKeyPair();
  const keys = trustedKeySet([key.publicKeyPem]);
  const now = Date.now();
  const signedArb = fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }))
    .map(([id, args]) => JSON.stringify(signCommand({ id, name: 'set', args }, 'dev-a', key.privateKeyPem, now)));
  let accepted = 0;
  fc.assert(fc.property(mutatedText(signedArb), (text) => {
    let msg: unknown;
    try { msg = JSON.parse(text); } catch { return; }
    const r = refusalOf(() => verifyCommand(msg, 'dev-a', keys, { maxSkewMs: 60_000, now }), ['EDGE_COMMAND_SIGNATURE']);
    if (!r) {
      // Accepted: then it must be exactly what the key signed (the mutation hit only whitespace-like spots).
      const m = msg as { id: string; name: string; args?: unknown; sig: { ts: number } };
      const again = signCommand({ id: m.id, name: m.name, args: m.args }, 'dev-a', key.privateKeyPem, m.sig.ts);
      if (again.sig.signature !== (m.sig as unknown as { signature: string }).signature) throw new Error('accepted a command the key did not sign');
      accepted++;
    }
  }), { numRuns: RUNS * 2 });
  fc.assert(fc.property(fc.anything(), fc.anything(), (a, sig) => {
    refusalOf(() => verifyCommand(typeof a === 'object' && a !== null ? { ...a, sig } : a, 'dev-a', keys, { maxSkewMs: 60_000, now }, new ReplayGuard(60_000)), ['EDGE_COMMAND_SIGNATURE']);
  }), { numRuns: RUNS });
  t.pass(`${3 * RUNS} inputs; ${accepted} mutations left the signed content intact and were accepted`);
});

t.test('no unhandled rejections', async (t) => {
  t.same(unhandled(), []);
});
