// The agent's security settings in force: checked first at start, before any other part
// reads a key or loads a model. Refuses to start when the MQTT private key is readable by
// others; provides the package signature verifier (on by default) that the agent hands to
// the runtime and to model sync; exposes the command check for the fleet link.
import type { KeyObject } from 'node:crypto';
import type { AgentContext, Component } from '../component.js';
import { ACCEPT_UNSIGNED, type SignatureInput, type SignatureVerdict, type SignatureVerifier } from '../models/verify.js';
import { checkPrivateKeyFile } from './key-file.js';
import { verifyManifestSignature } from './signing.js';
import { ReplayGuard, verifyCommand } from './command-signing.js';
import { loadTrustedKeys } from './trusted-keys.js';
import { checkCommandArgs } from './command-args.js';

export class SecurityPolicy implements Component {
  readonly name = 'security';
  #packageKeys = new Map<string, KeyObject>();
  #commandKeys = new Map<string, KeyObject>();
  #replays: ReplayGuard | undefined;
  #verified = 0;
  #refused = 0;
  #commandsRefused = 0;

  constructor(private readonly ctx: AgentContext) {}

  async start(): Promise<void> {
    const { mqtt, security } = this.ctx.config;
    if (mqtt.key) checkPrivateKeyFile(mqtt.key, 'mqtt.key');
    if (this.ctx.config.provisioning) checkPrivateKeyFile(this.ctx.config.provisioning.claimKey, 'provisioning.claimKey');
    this.#packageKeys = loadTrustedKeys(security.trustedKeys, 'security.trustedKeys');
    this.#commandKeys = loadTrustedKeys(security.commands.controllerKeys, 'security.commands.controllerKeys');
    this.#replays = new ReplayGuard(security.commands.maxSkewSeconds * 1000);
    if (!security.requireSignedPackages) {
      this.ctx.log.warn('security.requireSignedPackages is off: model packages load without a signature check');
    } else if (this.#packageKeys.size === 0) {
      this.ctx.log.warn('security.requireSignedPackages is on and security.trustedKeys is empty: every model package will be refused');
    }
  }

  async stop(): Promise<void> {}

  /**
   * This agent's package signature verifier, for loadPackage and extractArchive: checks
   * against security.trustedKeys, or accepts unsigned packages when requireSignedPackages is
   * off. Before start() no key is loaded, so a signature check refuses everything.
   */
  readonly packageVerifier: SignatureVerifier = (input) =>
    this.ctx.config.security.requireSignedPackages ? this.verifyPackageSignature(input) : ACCEPT_UNSIGNED(input);

  /** Checks a package's signature against the trusted keys: throws EDGE_PACKAGE_SIGNATURE to refuse. */
  verifyPackageSignature(input: SignatureInput): SignatureVerdict {
    try {
      const keyId = verifyManifestSignature(input.manifestBytes, input.signature, this.#packageKeys, `${input.name}@${input.version}`);
      this.#verified++;
      return { verified: true, signer: keyId };
    } catch (err) {
      this.#refused++;
      this.ctx.log.warn({ package: input.packageDir, err }, 'model package refused: signature');
      throw err;
    }
  }

  /**
   * For the fleet link, before a command runs: throws EDGE_COMMAND_UNSAFE_ARGUMENT when an
   * argument is a path or a URL, and EDGE_COMMAND_SIGNATURE when signatures are required and
   * this one is missing, wrong, stale or replayed.
   */
  checkCommand(parsed: unknown): void {
    const c = this.ctx.config.security.commands;
    try {
      checkCommandArgs((parsed as { args?: unknown } | null)?.args);
      if (!c.requireSignature) return;
      verifyCommand(parsed, this.ctx.config.deviceId, this.#commandKeys, { maxSkewMs: c.maxSkewSeconds * 1000 }, this.#replays);
    } catch (err) {
      this.#commandsRefused++;
      throw err;
    }
  }

  status(): unknown {
    const s = this.ctx.config.security;
    return {
      requireSignedPackages: s.requireSignedPackages,
      trustedKeys: [...this.#packageKeys.keys()],
      packagesVerified: this.#verified,
      packagesRefused: this.#refused,
      commandSignatures: s.commands.requireSignature ? 'required' : 'off',
      commandsRefused: this.#commandsRefused,
    };
  }
}
