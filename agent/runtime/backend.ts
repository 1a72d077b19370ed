// What every inference backend implements: ONNX Runtime ('ort') and the project's own
// int8 engine ('native'). Tensors cross this boundary as plain typed arrays.

export type DType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64';

export type TensorData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array;

export interface Tensor {
  dtype: DType;
  /** Row-major dimensions; the product equals data.length. */
  shape: number[];
  data: TensorData;
}

export type TensorMap = Record<string, Tensor>;

export interface IOSpec {
  name: string;
  dtype: DType;
  /** A string dimension is symbolic (the batch). */
  shape: (number | string)[];
}

export type BackendKind = 'ort' | 'native' | 'partitioned';

export interface Backend {
  readonly kind: BackendKind;
  readonly inputs: IOSpec[];
  readonly outputs: IOSpec[];
  /** Runs one inference off the event loop (or cheaply enough not to block it). */
  run(inputs: TensorMap): Promise<TensorMap>;
  /** Releases sessions, arenas and threads. */
  dispose(): Promise<void>;
  /** Backend-specific facts for /v1/status (kernel variant, threads, arena bytes...). */
  describe(): Record<string, unknown>;
}

export const DTYPE_BYTES: Record<DType, number> = { float32: 4, uint8: 1, int8: 1, int32: 4, int64: 8 };
