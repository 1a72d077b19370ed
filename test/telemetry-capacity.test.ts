// How much the buffer evicts after an insert, as a pure function of (budget, the rows'
// estimated bytes, the bytes of the pages in use): nothing below 70 % of the budget by both
// measures, and down to 60 % by the larger of the two once either is above 70 %.
import t from 'tap';
import { budgetExcess, evictionWarning } from '../agent/telemetry/capacity.js';

const CAP = 1_000_000;

const cases: { name: string; queued: number; used: number; excess: number }[] = [
  { name: 'empty', queued: 0, used: 0, excess: 0 },
  { name: 'rows and pages below the high-water mark', queued: 650_000, used: 690_000, excess: 0 },
  { name: 'rows exactly at the high-water mark', queued: 700_000, used: 600_000, excess: 0 },
  { name: 'rows above it: down to the low-water mark', queued: 800_000, used: 650_000, excess: 200_000 },
  { name: 'pages above it (rows below): pages down to low water, scaled to rows', queued: 500_000, used: 1_000_000, excess: 200_000 },
  { name: 'both above: the larger of the two', queued: 800_000, used: 900_000, excess: 266_666.67 },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    t.equal(Math.round(budgetExcess(CAP, c.queued, c.used) * 100) / 100, c.excess, `budget ${CAP}, rows ${c.queued}, pages ${c.used}: evict ${c.excess}`);
  });
}

t.test('the eviction warning: from 1 in 10 records evicted', async (t) => {
  t.equal(evictionWarning(100, 0, CAP), undefined, 'nothing evicted: no warning');
  t.equal(evictionWarning(100, 9, CAP), undefined, '9 of 100: no warning');
  t.match(evictionWarning(100, 10, CAP), /evicting records: 10 of 100 accepted were dropped to stay within 977 KB/, '10 of 100: a warning naming the budget');
});
