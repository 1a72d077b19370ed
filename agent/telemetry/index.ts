export { TelemetryBuffer } from './buffer.js';
export { encodeBatch, decodeBatch, BATCH_CONTENT_TYPE, BATCH_VERSION } from '../../protocol/telemetry-batch.js';
export type { BatchHeader, BatchRecord, DecodedBatch } from '../../protocol/telemetry-batch.js';
export type * from './types.js';
export { telemetryConfig } from './defaults.js';
