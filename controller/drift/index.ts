// Fleet-wide drift, for `edge-fleet drift` (controller/cli.ts) and the dashboard.
//
// Functions for the fleet engineer (all take the rows of FleetStore.driftReports(): {deviceId, seq, ts, report}):
//   aggregateDrift(rows, store?)            -> Promise<DriftSummaryRow[]>: one flat row per model version (what `edge-fleet drift` prints);
//                                              with a store, reads each version's reference from its published package for the fleet verdict
//   rankDrift(rows, {model?, version?})     -> VersionRanking[]: per model version, devices and features by highest score
//   fleetProfile(rows, model, version)      -> Profile: the latest window profile of every device of that version, merged
//   fleetDrift(rows, model, version, ref)   -> FleetDrift: the fleet profile compared with the reference (the fleet-wide verdict)
//   referenceFromStore(store, model, version) -> Promise<DriftReference | undefined>: the `drift` field of a published package's manifest
// Reports are stored by FleetStore (table drift) as they arrive on the telemetry stream "drift".
export { aggregateDrift, type DriftSummaryRow } from './aggregate.js';
export { rankDrift, latestPerDevice, type VersionRanking, type StoredDriftRow } from './rank.js';
export { fleetProfile, fleetDrift, type FleetDrift } from './fleet.js';
export { referenceFromStore } from './reference.js';
