// Triton's binary tensor data extension of the REST protocol: a body is a JSON header of
// Inference-Header-Content-Length bytes followed by the tensors' raw bytes, in the order of
// the inputs (or outputs) whose "parameters" give their "binary_data_size".
// https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
import { Errors } from '../errors.js';

export const HEADER_LENGTH = 'inference-header-content-length';

/** The JSON header and the binary part of a request body. */
export function splitBody(body: Buffer, headerLength: string | string[] | undefined): { json: unknown; binary: Buffer } {
  let jsonBytes: Buffer = body;
  let binary: Buffer = Buffer.alloc(0);
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (typeof headerLength !== 'string' || !/^\d+$/.test(headerLength) || n > body.length) {
      throw Errors.BAD_REQUEST(`Inference-Header-Content-Length must be the byte length of the JSON header (0..${body.length}, the body's length), got ${JSON.stringify(headerLength)}`);
    }
    jsonBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  let json: unknown;
  try {
    json = JSON.parse(jsonBytes.toString('utf8'));
  } catch (err) {
    throw Errors.BAD_REQUEST(`the request${headerLength !== undefined ? '\'s JSON header' : ''} is not valid JSON (${(err as Error).message}); send {"inputs": [{"name", "shape", "datatype", "data"}]}${headerLength === undefined ? ', or with binary tensors the header length in Inference-Header-Content-Length' : ''}`);
  }
  return { json, binary };
}

/** Cuts the binary part into the sizes inputs declare, in order; every byte must be claimed. */
export class BinaryReader {
  readonly #binary: Buffer;
  #at = 0;
  constructor(binary: Buffer) {
    this.#binary = binary;
  }

  take(input: string, size: unknown): Buffer {
    if (!Number.isSafeInteger(size) || (size as number) < 0) {
      throw Errors.BAD_REQUEST(`input "${input}": "binary_data_size" must be a whole number of bytes, got ${JSON.stringify(size)}`);
    }
    const end = this.#at + (size as number);
    if (end > this.#binary.length) {
      throw Errors.BAD_REQUEST(`input "${input}": "binary_data_size" ${size} goes past the end of the binary data (${this.#binary.length - this.#at} bytes left after the JSON header of Inference-Header-Content-Length bytes)`);
    }
    const out = this.#binary.subarray(this.#at, end);
    this.#at = end;
    return out;
  }

  /** Throws when bytes are left over (a wrong size or header length). */
  finish(): void {
    if (this.#at !== this.#binary.length) {
      throw Errors.BAD_REQUEST(`${this.#binary.length - this.#at} bytes of binary data after the JSON header are claimed by no input's "binary_data_size"`);
    }
  }
}

/** A response with binary outputs: the JSON header, then each output's bytes. */
export function joinBody(header: unknown, parts: Buffer[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...parts]), headerLength: json.length };
}

