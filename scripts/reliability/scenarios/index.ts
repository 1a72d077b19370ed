// The scenarios `npm run soak` knows, in the order it runs them.
import type { Figures } from '../figures.js';
import type { ScenarioOptions } from '../rig.js';
import { run as brokerOutage } from './broker-outage.js';
import { run as largeRecords } from './large-records.js';
import { run as agentCrash } from './agent-crash.js';
import { run as brokerRestart } from './broker-restart.js';
import { run as network } from './network.js';
import { run as diskFull } from './disk-full.js';
import { run as modelFaults } from './model-faults.js';
import { runBoth as overload } from './overload.js';
import { run as slowConsumer } from './slow-consumer.js';
import { run as footprint } from './footprint.js';
import { run as longRun } from './long-run.js';

export type Scenario = (opts: ScenarioOptions) => Promise<Figures | Figures[]>;

export const SCENARIOS: Record<string, Scenario> = {
  'broker-outage': brokerOutage,
  'large-records': largeRecords,
  'agent-crash': agentCrash,
  'broker-restart': brokerRestart,
  network,
  'disk-full': diskFull,
  'model-faults': modelFaults,
  overload,
  'slow-consumer': slowConsumer,
  footprint,
  'long-run': longRun,
};
