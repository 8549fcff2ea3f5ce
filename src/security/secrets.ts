/**
 * Secrets at rest: webhook signing secrets and remote agents' Authorization headers are stored
 * sealed with AES-256-GCM (WebCrypto), as `enc:v1:<key id>:<base64 of iv ‖ ciphertext ‖ tag>`.
 *
 * - The key is VIGIL_SECRET_KEY (32 bytes, base64 or hex). Outside production, without it, a
 *   key is generated once in `DATA_DIR/secret.key` (mode 0600) and reused; production refuses
 *   to start without it.
 * - The key id is a short fingerprint of the key (8 hex digits of a SHA-256), so a value names
 *   the key that opens it: keys listed in VIGIL_SECRET_KEY_PREVIOUS still open their values, and
 *   the re-encryption at start-up (`reencrypt.ts`) moves them to the current key.
 * - The additional authenticated data is the value's header and its purpose (which column it
 *   belongs to): a value altered, or copied into another column, does not open.
 * - A value without the `enc:` prefix is a plaintext written before encryption existed: it is
 *   read as it is, until the re-encryption seals it.
 *
 * Values are opened only where they are used (signing a webhook, calling an agent).
 */
import { type Config, ConfigError, parseSecretKey } from "../config.ts";

export { parseSecretKey };

export const SEALED_PREFIX = "enc:";
const VERSION = "v1";
const IV_BYTES = 12;
const KEY_BYTES = 32;

/** What a sealed value is for: part of its authenticated data. */
export type Purpose =
  | "alerts.webhook.secret"
  | "alerts.slack.webhook_url"
  | "alerts.pagerduty.routing_key"
  | "agents.authorization";

/** A stored value that cannot be opened: unknown key, altered, or not a sealed value at all. */
export class SecretError extends Error {
  override name = "SecretError";
}

// ---- keys ------------------------------------------------------------------------------------

/** A new random key, as base64. */
export function generateSecretKey(): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

/** The key's fingerprint: 8 hex digits of SHA-256("vigil secret key" ‖ 0 ‖ key). */
export async function keyId(raw: Uint8Array): Promise<string> {
  const label = new TextEncoder().encode("vigil secret key\0");
  const input = new Uint8Array(label.length + raw.length);
  input.set(label);
  input.set(raw, label.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  return [...digest.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

interface Key {
  id: string;
  key: CryptoKey;
}

async function importKey(raw: Uint8Array): Promise<Key> {
  const key = await crypto.subtle.importKey("raw", raw as BufferSource, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
  return { id: await keyId(raw), key };
}

/** The current key (seals) and the previous ones (still open). */
export class Keyring {
  private constructor(
    private readonly current: Key,
    private readonly keys: Map<string, Key>,
  ) {}

  static async create(current: Uint8Array, previous: Uint8Array[] = []): Promise<Keyring> {
    const first = await importKey(current);
    const keys = new Map([[first.id, first]]);
    for (const raw of previous) {
      const key = await importKey(raw);
      if (keys.has(key.id) && key.id !== first.id) {
        throw new ConfigError(
          "invalid configuration: VIGIL_SECRET_KEY_PREVIOUS lists two keys with one key id",
        );
      }
      if (!keys.has(key.id)) keys.set(key.id, key);
    }
    return new Keyring(first, keys);
  }

  /** The id of the key that seals. */
  get currentId(): string {
    return this.current.id;
  }

  /** True when the value is sealed with the current key (nothing to re-encrypt). */
  isCurrent(value: string): boolean {
    return value.startsWith(`${SEALED_PREFIX}${VERSION}:${this.current.id}:`);
  }

  async seal(plaintext: string, purpose: Purpose): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const header = `${SEALED_PREFIX}${VERSION}:${this.current.id}:`;
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: aad(header, purpose) },
        this.current.key,
        new TextEncoder().encode(plaintext),
      ),
    );
    const out = new Uint8Array(iv.length + sealed.length);
    out.set(iv);
    out.set(sealed, iv.length);
    return header + toBase64(out);
  }

  /**
   * The plaintext of a stored value; a value without the `enc:` prefix (written before
   * encryption) is returned as it is. Throws a SecretError when it cannot be opened.
   */
  async open(value: string, purpose: Purpose): Promise<string> {
    if (!isSealed(value)) return value;
    const parts = value.split(":");
    if (parts.length !== 4 || parts[1] !== VERSION) {
      throw new SecretError(
        `the stored value is not an ${SEALED_PREFIX}${VERSION} value (a newer vigil wrote it?)`,
      );
    }
    const [, , id, body] = parts;
    const key = this.keys.get(id);
    if (!key) {
      throw new SecretError(
        `the stored value is sealed with key ${id}, which is neither VIGIL_SECRET_KEY (${this.current.id}) nor in VIGIL_SECRET_KEY_PREVIOUS`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(body);
    } catch {
      throw new SecretError("the stored value is damaged (not base64)");
    }
    if (bytes.length < IV_BYTES + 16) throw new SecretError("the stored value is damaged (short)");
    try {
      const plain = await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: bytes.slice(0, IV_BYTES),
          additionalData: aad(`${SEALED_PREFIX}${VERSION}:${id}:`, purpose),
        },
        key.key,
        bytes.slice(IV_BYTES),
      );
      return new TextDecoder().decode(plain);
    } catch {
      throw new SecretError(
        `the stored value does not decrypt with key ${id}: it was altered, or belongs to another field`,
      );
    }
  }
}

/** True when the value is sealed (or claims to be); false for a legacy plaintext. */
export function isSealed(value: string): boolean {
  return value.startsWith(SEALED_PREFIX);
}

function aad(header: string, purpose: Purpose): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${header}${purpose}`);
}

// ---- where the keys come from ---------------------------------------------------------------

export type KeyConfig = Pick<
  Config,
  "VIGIL_ENV" | "DATA_DIR" | "VIGIL_SECRET_KEY" | "VIGIL_SECRET_KEY_PREVIOUS"
>;

export interface ResolvedKeys {
  keyring: Keyring;
  /** Where the current key came from. */
  source: { kind: "env" } | { kind: "file"; path: string; created: boolean };
}

export const DEV_KEY_FILE = "secret.key";

/**
 * The keyring of a configuration: VIGIL_SECRET_KEY; else, outside production, the development
 * key in DATA_DIR (generated on first use); else a ConfigError (one line naming the variable).
 */
export async function resolveKeys(config: KeyConfig): Promise<ResolvedKeys> {
  const previous = config.VIGIL_SECRET_KEY_PREVIOUS ?? [];
  if (config.VIGIL_SECRET_KEY) {
    return {
      keyring: await Keyring.create(config.VIGIL_SECRET_KEY, previous),
      source: { kind: "env" },
    };
  }
  if (config.VIGIL_ENV === "production") {
    throw new ConfigError(
      "invalid configuration: VIGIL_SECRET_KEY must be set in production (32 bytes, base64 or hex: openssl rand -base64 32)",
    );
  }
  const path = `${config.DATA_DIR}/${DEV_KEY_FILE}`;
  const { key, created } = await developmentKey(path);
  return { keyring: await Keyring.create(key, previous), source: { kind: "file", path, created } };
}

/**
 * Reads the development key, or creates it: written to a temporary file (0600) and linked into
 * place, so that processes starting together agree on one key and none reads a half-written file.
 */
async function developmentKey(path: string): Promise<{ key: Uint8Array; created: boolean }> {
  const existing = await readKeyFile(path);
  if (existing) return { key: existing, created: false };
  const dir = path.slice(0, path.lastIndexOf("/")) || ".";
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, generateSecretKey() + "\n", { createNew: true, mode: 0o600 });
  try {
    await Deno.chmod(tmp, 0o600).catch(() => {}); // umask-proof; not supported everywhere
    await Deno.link(tmp, path);
    return { key: (await readKeyFile(path))!, created: true };
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    return { key: (await readKeyFile(path))!, created: false }; // another process won
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

async function readKeyFile(path: string): Promise<Uint8Array | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    return parseSecretKey(text);
  } catch {
    throw new ConfigError(
      `invalid configuration: ${path} is not a 32-byte key (base64 or hex): restore it, or set VIGIL_SECRET_KEY`,
    );
  }
}

// ---- the service ----------------------------------------------------------------------------

/**
 * The keyring of a running vigil, resolved once on first use (main.ts resolves it at start-up,
 * so that a missing key stops the process before it serves).
 */
export class Secrets {
  #keyring: Promise<Keyring> | undefined;

  constructor(private readonly load: () => Promise<Keyring>) {}

  static fromConfig(config: KeyConfig): Secrets {
    return new Secrets(async () => (await resolveKeys(config)).keyring);
  }

  static of(keyring: Keyring): Secrets {
    return new Secrets(() => Promise.resolve(keyring));
  }

  /** The keyring; a failed load is tried again at the next use. */
  keyring(): Promise<Keyring> {
    this.#keyring ??= this.load().catch((error) => {
      this.#keyring = undefined;
      throw error;
    });
    return this.#keyring;
  }

  async seal(plaintext: string, purpose: Purpose): Promise<string> {
    return await (await this.keyring()).seal(plaintext, purpose);
  }

  async open(value: string, purpose: Purpose): Promise<string> {
    return await (await this.keyring()).open(value, purpose);
  }
}

// ---- base64 ---------------------------------------------------------------------------------

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
