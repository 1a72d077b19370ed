// The controller's side of mutual TLS with the broker: the CA that signed the broker's
// certificate, and the controller's own certificate and key (docs/security.md). The key file
// gets the same permission check as the agent's.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { checkPrivateKeyFile } from '../agent/security/key-file.js';
import { describe } from '../protocol/errors.js';

export interface BrokerTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface BrokerTlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

function pem(file: string, what: string, kind: RegExp): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new InvalidArgumentError(`${what} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? describe(err)})`);
  }
  if (!kind.test(bytes.toString('latin1'))) throw new InvalidArgumentError(`${what} ${file} is not a PEM file (expected a "-----BEGIN ${kind.source.replace(/[\\^$.*+?()[\]{}|]/g, '').replace('BEGIN ', '').trim()}" block)`);
  return bytes;
}

/** Reads and checks the files of --ca/--cert/--key; undefined when none is given. */
export function readBrokerTls(files: BrokerTlsFiles): BrokerTls | undefined {
  if (!files.ca && !files.cert && !files.key) return undefined;
  if (Boolean(files.cert) !== Boolean(files.key)) {
    throw new InvalidArgumentError('give --cert and --key together (the controller\'s certificate and its private key), or neither');
  }
  const tls: BrokerTls = {};
  if (files.ca) tls.ca = pem(files.ca, '--ca', /-----BEGIN CERTIFICATE-----/);
  if (files.cert) tls.cert = pem(files.cert, '--cert', /-----BEGIN CERTIFICATE-----/);
  if (files.key) {
    try {
      checkPrivateKeyFile(files.key, '--key');
    } catch (err) {
      throw new InvalidArgumentError(describe(err));
    }
    tls.key = pem(files.key, '--key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  }
  return tls;
}
