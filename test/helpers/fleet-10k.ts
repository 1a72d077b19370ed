// A large fleet written straight into a real controller database (one transaction), with the
// documents devices really send: a status (state, agent version, kernels, models, groups,
// uptime) and a reported model state (active, probation, or a failed deploy with its reason).
// Returns what the store must count, computed here independently of the store.
import type { FleetStore } from '../../controller/store.js';

export interface FleetFacts {
  ids: string[];
  byState: Record<string, number>;
  byVersion: Record<string, number>;
  failedDeploys: number;
  lastSeen: Map<string, number>;
  groups: Map<string, string[]>;
}

export const deviceName = (i: number): string => `pi-${String(i).padStart(5, '0')}`;

export function fillFleet(store: FleetStore, n: number, now = Date.now()): FleetFacts {
  const facts: FleetFacts = { ids: [], byState: {}, byVersion: {}, failedDeploys: 0, lastSeen: new Map(), groups: new Map() };
  const count = (rec: Record<string, number>, k: string): void => { rec[k] = (rec[k] ?? 0) + 1; };
  const setSeen = store.db.prepare('UPDATE devices SET last_seen = ? WHERE device_id = ?');
  store.db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const id = deviceName(i);
      // 70 % online, 25 % offline, 5 % never sent a status ("unknown", only telemetry seen).
      const state = i % 20 === 0 ? 'unknown' : i % 4 === 1 ? 'offline' : 'online';
      const version = i % 10 < 6 ? '1.0.0' : i % 10 < 9 ? '1.1.0' : '1.2.0';
      const groups = i % 3 === 0 ? ['lab'] : ['field', `site-${i % 7}`];
      facts.ids.push(id);
      facts.groups.set(id, state === 'unknown' ? [] : groups);
      count(facts.byState, state);
      if (state === 'unknown') {
        store.seen(id);
      } else {
        store.upsertStatus(id, {
          state, agentVersion: '0.1.0', kernelVariant: i % 2 ? 'neon-dotprod' : 'neon', uptimeSeconds: 3600 + i,
          models: [{ name: 'digits', version: version === '1.2.0' ? '1.1.0' : version }, ...(i % 5 === 0 ? [{ name: 'kws', version: '2.0.0' }] : [])],
          groups,
        });
        // 1.2.0 was refused (unsigned) and the device kept serving 1.1.0; 1.1.0 is on probation on some.
        const digits = version === '1.2.0'
          ? [{ name: 'digits', version: '1.1.0', state: 'active' }, { name: 'digits', version: '1.2.0', state: 'failed', reason: 'package is not signed' }]
          : [{ name: 'digits', version, state: version === '1.1.0' && i % 2 ? 'probation' : 'active' }];
        const models = [...digits, ...(i % 5 === 0 ? [{ name: 'kws', version: '2.0.0', state: 'committed' }] : [])];
        store.upsertReported(id, { models });
        for (const m of models) if (m.state !== 'failed') count(facts.byVersion, `${m.name}@${m.version}`);
        if (version === '1.2.0') facts.failedDeploys++;
      }
      // Seen over the last day, in an order unlike the ids' (so sorting by it is visible).
      const at = now - ((i * 7919) % 86_400) * 1000;
      setSeen.run(at, id);
      facts.lastSeen.set(id, at);
    }
  })();
  return facts;
}
