// The hook through which a package's detached signature (manifest.sig over the bytes of
// manifest.json) is checked. The agent installs a verifier from its security settings;
// until one is installed every package passes with verified=false, which /v1/status shows.
export interface SignatureInput {
  /** Package folder, for messages. */
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

/** Throws (an EdgeError, ideally Errors.PACKAGE_SIGNATURE) to refuse the package. */
export type SignatureVerifier = (input: SignatureInput) => SignatureVerdict | Promise<SignatureVerdict>;

const acceptUnverified: SignatureVerifier = (input) => ({
  verified: false,
  note: input.signature ? 'signature present but no verifier installed' : 'unsigned; no verifier installed',
});

let current: SignatureVerifier = acceptUnverified;

/** Installs the process-wide verifier (the security component does this at start). */
export function setSignatureVerifier(v: SignatureVerifier | undefined): void {
  current = v ?? acceptUnverified;
}

export function verifySignature(input: SignatureInput): Promise<SignatureVerdict> {
  return Promise.resolve(current(input));
}
