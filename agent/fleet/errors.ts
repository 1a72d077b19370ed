// The fleet link's part of the error catalog (agent/errors.ts holds the shared ones).
// Codes are stable: MQTT replies and models/reported carry them.
import { EdgeError } from '../errors.js';

function define<A extends unknown[]>(code: string, statusCode: number, message: (...args: A) => string) {
  const f = (...args: A): EdgeError => new EdgeError(code, message(...args), statusCode);
  return Object.assign(f, { code });
}

export const FleetErrors = {
  BAD_COMMAND: define('EDGE_FLEET_BAD_COMMAND', 400, (what: string) =>
    `bad command: ${what}; expected JSON {"id": string, "name": string, "args"?: object}`),
  PAYLOAD_TOO_LARGE: define('EDGE_FLEET_PAYLOAD_TOO_LARGE', 413, (size: number, limit: number) =>
    `payload of ${size} bytes is larger than the limit of ${limit} bytes`),
  UNKNOWN_COMMAND: define('EDGE_FLEET_UNKNOWN_COMMAND', 404, (name: string, known: string[]) =>
    `unknown command "${name}"; known: ${known.join(', ')}`),
  BAD_ARGS: define('EDGE_FLEET_BAD_ARGS', 400, (name: string, problems: string) =>
    `bad args for "${name}": ${problems}`),
  UNAVAILABLE: define('EDGE_FLEET_UNAVAILABLE', 503, (what: string) => what),
  COMMAND_FAILED: define('EDGE_FLEET_COMMAND_FAILED', 500, (what: string) => what),
  BAD_DESIRED: define('EDGE_FLEET_BAD_DESIRED', 400, (topic: string, problems: string) =>
    `ignored desired state on ${topic}: ${problems}`),
  OFFLINE: define('EDGE_FLEET_OFFLINE', 503, () => 'not connected to the fleet broker'),
  TIMEOUT: define('EDGE_FLEET_TIMEOUT', 504, (what: string, ms: number) => `${what}: no answer within ${ms} ms`),
  ARTIFACT: define('EDGE_FLEET_ARTIFACT', 502, (what: string) => what),
  CHUNK_HASH: define('EDGE_FLEET_CHUNK_HASH', 502, (index: number, want: string, got: string) =>
    `chunk ${index} failed its sha256 check (expected ${want}, got ${got})`),
  ARTIFACT_HASH: define('EDGE_FLEET_ARTIFACT_HASH', 502, (want: string, got: string) =>
    `downloaded artifact failed its sha256 check (expected ${want}, got ${got})`),
  SIGNATURE: define('EDGE_FLEET_SIGNATURE', 403, (why: string) => `package signature refused: ${why}`),
  VERSION_MISMATCH: define('EDGE_FLEET_VERSION_MISMATCH', 409, (desired: string, signed: string) =>
    `the desired ${desired} is a package whose signed manifest says ${signed}; the version a device installs is the one its manifest names: publish the package under that name and version`),
  INSTALL: define('EDGE_FLEET_INSTALL', 500, (why: string) => `install failed: ${why}`),
};
