/**
 * Re-encryption of the secrets at rest, run at start-up: every webhook secret, Slack webhook URL,
 * PagerDuty routing key and agent Authorization header that is a plaintext (written before
 * encryption) or sealed with another key than VIGIL_SECRET_KEY (one of VIGIL_SECRET_KEY_PREVIOUS)
 * is sealed again with the current key, in batches.
 *
 * Safe with replicas doing the same at the same time: each row is replaced only if it still holds
 * the value that was read (a compare-and-set), so a row changed meanwhile — by another replica,
 * or through the API — is left as the other writer left it. Rows that cannot be opened (a key
 * that is nowhere in the configuration) are counted, logged by id and skipped; they fail their
 * deliveries or calls with a clear error until the key is configured again.
 */
import type { Sql } from "../db/database.ts";
import type { Logger } from "../observability/logger.ts";
import {
  AGENT_AUTHORIZATION,
  agentCredentialsNotSealedWith,
  replaceAgentCredential,
} from "../agents/store.ts";
import {
  CHANNEL_SECRETS,
  channelSecretsNotSealedWith,
  replaceChannelSecret,
  replaceWebhookSecret,
  WEBHOOK_SECRET,
  webhookSecretsNotSealedWith,
} from "../alerts/store.ts";
import { SecretError, type Secrets } from "./secrets.ts";

export interface ReencryptCounts {
  /** Sealed again with the current key. */
  resealed: number;
  /** Could not be opened (skipped). */
  failed: number;
  /** Changed by another writer between read and write (left as it is). */
  raced: number;
}

export interface ReencryptResult {
  webhookSecrets: ReencryptCounts;
  slackWebhookUrls: ReencryptCounts;
  pagerdutyRoutingKeys: ReencryptCounts;
  agentCredentials: ReencryptCounts;
}

export const REENCRYPT_BATCH = 100;

export async function reencryptSecrets(
  sql: Sql,
  secrets: Secrets,
  logger?: Logger,
  batch = REENCRYPT_BATCH,
): Promise<ReencryptResult> {
  const keyring = await secrets.keyring();
  const prefix = `enc:v1:${keyring.currentId}:`;

  const webhookSecrets = await inBatches(
    (after) => webhookSecretsNotSealedWith(sql, prefix, after, batch),
    (row) => row.id,
    batch,
    async (row) => {
      const plaintext = await keyring.open(row.secret, WEBHOOK_SECRET);
      const sealed = await keyring.seal(plaintext, WEBHOOK_SECRET);
      return await replaceWebhookSecret(sql, row.id, row.secret, sealed, plaintext.slice(-4));
    },
    (row, error) =>
      logger?.warn("cannot re-encrypt the webhook secret of alert {alert_id}: {message}", {
        alert_id: row.id,
        message: error.message,
      }),
  );
  // Slack webhook URLs and PagerDuty routing keys: one walk each, in CHANNEL_SECRETS' order.
  const channelSecrets: ReencryptCounts[] = [];
  for (const field of CHANNEL_SECRETS) {
    channelSecrets.push(
      await inBatches(
        (after) => channelSecretsNotSealedWith(sql, field, prefix, after, batch),
        (row) => row.id,
        batch,
        async (row) => {
          const plaintext = await keyring.open(row.secret, field.purpose);
          const sealed = await keyring.seal(plaintext, field.purpose);
          const hint = field.hint(plaintext);
          return await replaceChannelSecret(sql, field, row.id, row.secret, sealed, hint);
        },
        (row, error) =>
          logger?.warn(`cannot re-encrypt the ${field.name} of alert {alert_id}: {message}`, {
            alert_id: row.id,
            message: error.message,
          }),
      ),
    );
  }
  const [slackWebhookUrls, pagerdutyRoutingKeys] = channelSecrets;
  const agentCredentials = await inBatches(
    (after) => agentCredentialsNotSealedWith(sql, prefix, after, batch),
    (row) => row.name,
    batch,
    async (row) => {
      const plaintext = await keyring.open(row.authorization, AGENT_AUTHORIZATION);
      const sealed = await keyring.seal(plaintext, AGENT_AUTHORIZATION);
      return await replaceAgentCredential(sql, row.name, row.authorization, sealed);
    },
    (row, error) =>
      logger?.warn("cannot re-encrypt the Authorization header of agent {agent}: {message}", {
        agent: row.name,
        message: error.message,
      }),
  );
  const result = { webhookSecrets, slackWebhookUrls, pagerdutyRoutingKeys, agentCredentials };
  if (Object.values(result).some((counts) => counts.resealed > 0)) {
    logger?.info("re-encrypted secrets with key {key_id}", {
      key_id: keyring.currentId,
      webhook_secrets: webhookSecrets.resealed,
      slack_webhook_urls: slackWebhookUrls.resealed,
      pagerduty_routing_keys: pagerdutyRoutingKeys.resealed,
      agent_credentials: agentCredentials.resealed,
    });
  }
  return result;
}

/** Walks the rows by key (each batch after the last key seen), so skipped rows end the walk. */
async function inBatches<Row>(
  read: (after: string | null) => Promise<Row[]>,
  keyOf: (row: Row) => string,
  batch: number,
  reseal: (row: Row) => Promise<boolean>,
  onError: (row: Row, error: Error) => void,
): Promise<ReencryptCounts> {
  const counts: ReencryptCounts = { resealed: 0, failed: 0, raced: 0 };
  let after: string | null = null;
  for (;;) {
    const rows = await read(after);
    for (const row of rows) {
      try {
        if (await reseal(row)) counts.resealed++;
        else counts.raced++;
      } catch (error) {
        if (!(error instanceof SecretError)) throw error;
        counts.failed++;
        onError(row, error);
      }
    }
    if (rows.length < batch) return counts;
    after = keyOf(rows[rows.length - 1]);
  }
}
