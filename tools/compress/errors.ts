// Errors a user of `edge-model` can cause: each has a stable code and says what was expected.
// The CLI prints the message alone (no stack) and exits non-zero.
import { EdgeError } from '../../agent/errors.js';

export type CompressErrorCode =
  | 'EDGE_MODEL_UNREADABLE'
  | 'EDGE_MODEL_INVALID'
  | 'EDGE_MODEL_UNSUPPORTED'
  | 'EDGE_DATA_INVALID'
  | 'EDGE_CALIB_EMPTY'
  | 'EDGE_CALIB_MISMATCH'
  | 'EDGE_LABELS_INVALID'
  | 'EDGE_PACKAGE_INVALID'
  | 'EDGE_KEY_INVALID'
  | 'EDGE_USAGE';

export class CompressError extends EdgeError {
  constructor(code: CompressErrorCode, message: string) {
    super(code, message, 400);
    this.name = 'CompressError';
  }
}

export const compressError = (code: CompressErrorCode, message: string): CompressError => new CompressError(code, message);
