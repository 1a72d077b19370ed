// Short form of the fault scenarios of `npm run soak` (scripts/reliability): real agent
// processes, real Mosquitto, real SQLite files. Nothing the agent answered 201 for is lost.
import t from 'tap';
import { run as brokerOutage } from '../scripts/reliability/scenarios/broker-outage.js';
import { run as agentCrash } from '../scripts/reliability/scenarios/agent-crash.js';
import { runOne as brokerRestart } from '../scripts/reliability/scenarios/broker-restart.js';
import { run as network } from '../scripts/reliability/scenarios/network.js';
import { figuresLine } from '../scripts/reliability/figures.js';

// Five scenarios of 7-9 s of faults each, plus start-up and the drain to the controller: about
// 2-3 minutes on a loaded 2-core machine.
t.setTimeout(480_000);

const rate = 100;
process.setMaxListeners(50); // each agent child process adds an exit hook

t.test('broker outage: stopped and started repeatedly under load, every accepted record arrives', async (t) => {
  const f = await brokerOutage({ durationMs: 8000, rate, downMs: 2000, upMs: 1500, minFaults: 2 });
  t.comment(figuresLine(f));
  t.ok(f.faults >= 2, 'the broker went away at least twice');
  t.ok(f.accepted > 0, 'records were accepted');
  t.equal(f.evicted, 0, 'nothing evicted: the buffer had room');
  t.equal(f.delivered, f.accepted, 'the controller holds every accepted record once');
  t.equal(f.lost, 0, 'lost 0 (including every seq answered 201)');
});

t.test('agent crash: SIGKILL under load, restarted by the supervisor loop; records answered 201 before a kill arrive', async (t) => {
  const f = await agentCrash({ durationMs: 8000, rate, minGapMs: 800, maxGapMs: 2000, minKills: 2 });
  t.comment(figuresLine(f));
  t.ok(f.faults >= 2, 'killed at least twice');
  t.ok(f.accepted > 0);
  t.equal(f.delivered, f.accepted, 'every accepted record at the controller');
  t.equal(f.lost, 0, 'lost 0 (including every seq answered 201)');
});

t.test('broker restart with persistence on: nothing lost', async (t) => {
  const f = await brokerRestart({ durationMs: 7000, rate, minFaults: 2 }, true);
  t.comment(figuresLine(f));
  t.ok(f.faults >= 2, 'restarted at least twice');
  t.equal(f.lost, 0, 'lost 0');
  t.equal(f.delivered, f.accepted);
});

t.test('broker restart with persistence off: nothing lost (the controller acks what it stored; the rest is sent again)', async (t) => {
  const f = await brokerRestart({ durationMs: 7000, rate, minFaults: 2 }, false);
  t.comment(figuresLine(f));
  t.ok(f.faults >= 2, 'restarted at least twice');
  t.equal(f.lost, 0, 'lost 0 (including every seq answered 201)');
  t.equal(f.delivered, f.accepted);
});

t.test('a network that stalls and drops (a proxy pauses and cuts the TCP stream): nothing lost', async (t) => {
  const f = await network({ durationMs: 9000, rate, stallMs: 2000, minFaults: 2 });
  t.comment(figuresLine(f));
  t.match(f.notes, /[1-9]\d* stalls .* [1-9]\d* cuts/, 'both stalls and cuts happened');
  t.equal(f.lost, 0, 'lost 0');
  t.equal(f.delivered, f.accepted);
});
