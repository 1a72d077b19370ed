// The fleet CA as the controller uses it to provision devices (docs/provisioning.md): reads
// the CA made by scripts/make-ca.sh (P-256 key, PKCS#8 PEM), checks a device's PKCS#10
// request, signs device and claim certificates, and writes the CRL. All X.509 work is
// @peculiar/x509 on node:crypto's WebCrypto; nothing here builds ASN.1 by hand.
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';
import { FleetErrors } from '../../protocol/errors.js';

x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = webcrypto.CryptoKey;

const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
/** Largest CSR (PEM characters) looked at: a P-256 or ed25519 request is under 1 KB. */
export const MAX_CSR_CHARS = 4096;

export interface FleetCa {
  cert: x509.X509Certificate;
  key: CryptoKey;
  pem: string;
}

export async function loadCa(certFile: string, keyFile: string): Promise<FleetCa> {
  const pem = readFileSync(certFile, 'utf8');
  const cert = new x509.X509Certificate(pem);
  const keyDer = x509.PemConverter.decodeFirst(readFileSync(keyFile, 'utf8'));
  const key = await webcrypto.subtle.importKey('pkcs8', keyDer, EC, false, ['sign']);
  return { cert, key, pem };
}

/** The subject's CN of a certificate or request ('' when there is none). */
export function commonName(subject: x509.Name | string): string {
  const name = typeof subject === 'string' ? new x509.Name(subject) : subject;
  return name.getField('CN')[0] ?? '';
}

/**
 * Parses and checks a CSR: PEM of one CERTIFICATE REQUEST, a valid self-signature (the
 * requester holds the key), CN = the device id asked for, a P-256 or ed25519 key.
 */
export async function checkCsr(pem: unknown, deviceId: string): Promise<x509.Pkcs10CertificateRequest> {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw FleetErrors.ENROLL_BAD_CSR('"csr" must be a PEM "CERTIFICATE REQUEST" block');
  }
  if (pem.length > MAX_CSR_CHARS) throw FleetErrors.ENROLL_BAD_CSR(`the CSR is ${pem.length} characters, more than ${MAX_CSR_CHARS}`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    throw FleetErrors.ENROLL_BAD_CSR(`not a PKCS#10 request (${(err as Error).message})`);
  }
  const alg = csr.publicKey.algorithm as { name: string; namedCurve?: string };
  if (!((alg.name === 'ECDSA' && alg.namedCurve === 'P-256') || alg.name === 'Ed25519')) {
    throw FleetErrors.ENROLL_BAD_CSR(`key algorithm ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ''} is not accepted (P-256 ECDSA or ed25519)`);
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) throw FleetErrors.ENROLL_BAD_CSR('its signature does not verify (the request was changed, or not signed with the key it names)');
  const cn = commonName(csr.subjectName);
  if (cn !== deviceId) throw FleetErrors.ENROLL_BAD_CSR(`its subject CN is "${cn}", not the device id "${deviceId}" the request names`);
  return csr;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f || 0x01; // positive, and no leading zero byte
  return b.toString('hex');
}

export interface Issued {
  pem: string;
  serial: string;
  notBefore: string;
  notAfter: string;
}

/** A client certificate (CN = `cn`, clientAuth) for `publicKey`, signed by the fleet CA. */
export async function issueClientCert(ca: FleetCa, cn: string, publicKey: x509.PublicKey | CryptoKey, lifetimeSeconds: number): Promise<Issued> {
  const now = Date.now();
  // Back-dated (a minute, at most a tenth of the lifetime): a device whose clock is slightly
  // behind can use it at once, and a short lifetime is still renewed at its planned share.
  const notBefore = new Date(now - Math.min(60_000, lifetimeSeconds * 100));
  const notAfter = new Date(now + lifetimeSeconds * 1000);
  const sn = serial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: sn,
    subject: `CN=${cn}`, // cn is a device or claim id (ID_PATTERN): nothing to escape
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: SIGN,
    publicKey: publicKey as never,
    signingKey: ca.key as never,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { pem: cert.toString('pem'), serial: cert.serialNumber, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() };
}

/** A claim credential: a fresh key and its certificate (CN = the claim's name). */
export async function issueClaimCert(ca: FleetCa, claim: string, lifetimeSeconds: number): Promise<Issued & { keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const issued = await issueClientCert(ca, claim, keys.publicKey, lifetimeSeconds);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { ...issued, keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}

/** The CRL of the fleet CA listing `serials` (hex), valid for `days`. */
export async function makeCrl(ca: FleetCa, serials: Array<{ serial: string; at: string }>, days = 30): Promise<string> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subject,
    thisUpdate: new Date(),
    nextUpdate: new Date(Date.now() + days * 86_400_000),
    entries: serials.map((s) => ({ serialNumber: s.serial, revocationDate: new Date(s.at) })),
    signingAlgorithm: SIGN,
    signingKey: ca.key as never,
  });
  // OpenSSL (Mosquitto's crlfile) reads only the "X509 CRL" label.
  return x509.PemConverter.encode(crl.rawData, 'X509 CRL');
}
