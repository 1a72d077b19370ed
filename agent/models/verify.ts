// How a package's detached signature (manifest.sig over the bytes of manifest.json) is
// checked. There is no process-wide verifier: whoever reads a package passes one in. The
// agent builds its verifier from its security settings (agent/security/policy.ts) and hands
// it to the runtime and to model sync; the controller and the tools, which read a package for
// its manifest and apply no device's policy, pass MANIFEST_ONLY.
import { EdgeError, Errors, describe } from '../errors.js';

export interface SignatureInput {
  /** Package folder or archive, for messages. */
  packageDir: string;
  /** The exact bytes of manifest.json (which carries the sha256 of every other file). */
  manifestBytes: Uint8Array;
  /** The bytes of manifest.sig, or undefined when the package has none. */
  signature: Uint8Array | undefined;
  name: string;
  version: string;
}

export interface SignatureVerdict {
  verified: boolean;
  /** Who signed it (key id), when verified. */
  signer?: string;
  /** Why it was not verified, when it was accepted anyway. */
  note?: string;
}

/** Throws Errors.PACKAGE_SIGNATURE to refuse the package. */
export type SignatureVerifier = (input: SignatureInput) => SignatureVerdict | Promise<SignatureVerdict>;

/** A device whose security.requireSignedPackages is off: every package passes, verified=false (shown in /v1/status). */
export const ACCEPT_UNSIGNED: SignatureVerifier = (input) => ({
  verified: false,
  note: input.signature ? 'signature present but not checked (security.requireSignedPackages is off)' : 'unsigned; security.requireSignedPackages is off',
});

/** The controller and the tools: a package read for what it holds; no device's signature policy applies ("edge-model verify" checks a signature). */
export const MANIFEST_ONLY: SignatureVerifier = () => ({ verified: false, note: 'signature not checked (read for its manifest only)' });

/** A reader given no verifier: every package is refused (a safe default, never a silent pass). */
export const REFUSE_ALL: SignatureVerifier = (input) => {
  throw Errors.PACKAGE_SIGNATURE(`${input.packageDir} (${input.name}@${input.version})`, 'this reader was given no signature verifier');
};

/**
 * Runs `verifier` over a package's manifest. Its refusal (EDGE_PACKAGE_SIGNATURE) passes
 * through; anything else it throws is the package's problem, EDGE_PACKAGE_INVALID.
 */
export async function verifySignature(verifier: SignatureVerifier, input: SignatureInput, label: string): Promise<SignatureVerdict> {
  try {
    return await verifier(input);
  } catch (err) {
    if (err instanceof EdgeError) throw err;
    throw Errors.PACKAGE_INVALID(label, `signature check failed: ${describe(err)}`);
  }
}
