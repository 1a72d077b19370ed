// Short form of the large-records scenario of `npm run soak` (issue 17): incompressible
// records of 1..64 KB mixed into the telemetry stream across broker outages. Real agent
// process, real Mosquitto, real SQLite files. Nothing accepted is lost or quarantined.
import t from 'tap';
import { run as largeRecords } from '../scripts/reliability/scenarios/large-records.js';
import { figuresLine } from '../scripts/reliability/figures.js';

t.setTimeout(300_000);
process.setMaxListeners(50); // each agent child process adds an exit hook

t.test('large records across broker outages: every accepted record arrives, none quarantined', async (t) => {
  const f = await largeRecords({ durationMs: 8000, rate: 100, downMs: 2000, upMs: 1500 });
  t.comment(figuresLine(f));
  t.ok(f.faults >= 2, 'the broker went away at least twice');
  t.match(f.notes, /[1-9]\d* large records/, 'large records were accepted');
  t.equal(f.quarantined, 0, 'quarantined 0: no record under mqtt.batchMaxBytes was set aside');
  t.equal(f.evicted, 0, 'nothing evicted: the buffer had room');
  t.equal(f.delivered, f.accepted, 'the controller holds every accepted record once');
  t.equal(f.lost, 0, 'lost 0 (including every seq answered 201)');
});
