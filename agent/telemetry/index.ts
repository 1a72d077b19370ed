export { TelemetryBuffer } from './buffer.js';
export { encodeBatch, decodeBatch, BATCH_CONTENT_TYPE, BATCH_VERSION } from './encoding.js';
export type { BatchHeader, BatchRecord, DecodedBatch } from './encoding.js';
export type * from './types.js';
export { telemetryConfig } from './defaults.js';
