/**
 * Pages that do not depend on vigil: the compose Alertmanager's entrypoint
 * (observability/compose/alertmanager-config.sh) renders its configuration from the committed
 * alertmanager.yml plus the receivers outside vigil that .env turns on. Each case runs the real
 * scripts with `sh`, as compose does: write-secrets.sh (secrets-init) turns the environment into
 * secret files, then the render script writes the configuration, which `amtool check-config` and
 * `amtool config routes test` (Debian package prometheus-alertmanager) then check.
 */
import { parse } from "yaml";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { ALERTMANAGER_CONFIG, repoPath } from "./support/observability.ts";
import { which } from "./support/cluster.ts";

const RENDER = repoPath("observability/compose/alertmanager-config.sh");
const WRITE_SECRETS = repoPath("observability/compose/write-secrets.sh");
const ONLY_VIGIL = "critical alerts reach only vigil";

/** A test that needs amtool: ignored, with the reason in its name, when it is missing. */
function amtoolTest(name: string, fn: (t: Deno.TestContext) => Promise<void>) {
  const present = which("amtool");
  Deno.test({
    name: present ? name : `${name} (skipped: amtool not installed)`,
    ignore: !present,
    fn,
  });
}

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<Output> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    clearEnv: true, // the caller's environment (a developer's ALERTMANAGER_*) must not help
    env: { HOME: Deno.env.get("HOME") ?? "/tmp", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

interface Rendered extends Output {
  /** The rendered configuration (empty when the script refused). */
  file: string;
  text: string;
  dir: string;
}

/**
 * secrets-init then the render script, laid out as in the containers: write-secrets.sh writes
 * to `vol/alertmanager/` (the volume), which `am/secrets` is (its mount point beside the
 * rendered `am/alertmanager.yml`). `chown` is a no-op stand-in, so this runs as any user.
 */
async function render(
  env: Record<string, string>,
  template = repoPath(ALERTMANAGER_CONFIG),
): Promise<Rendered> {
  const dir = await Deno.makeTempDir({ prefix: "vigil-am-render-" });
  await Deno.mkdir(`${dir}/bin`);
  await Deno.writeTextFile(`${dir}/bin/chown`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  const path = `${dir}/bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`;
  const secrets = await exec("sh", [WRITE_SECRETS], {
    PATH: path,
    SECRETS_DIR: `${dir}/vol`,
    METRICS_TOKEN: "stand-in-metrics-token",
    ALERTMANAGER_WEBHOOK_TOKEN: "stand-in-webhook-token",
    ...pick(env, /^ALERTMANAGER_(SLACK_WEBHOOK_URL|PAGERDUTY_ROUTING_KEY|SMTP_PASSWORD)$/),
  });
  assertEquals(secrets.code, 0, secrets.stderr);
  await Deno.mkdir(`${dir}/am`);
  await Deno.symlink(`${dir}/vol/alertmanager`, `${dir}/am/secrets`);
  const file = `${dir}/am/alertmanager.yml`;
  const out = await exec("sh", [RENDER], {
    PATH: path,
    ALERTMANAGER_TEMPLATE: template,
    ALERTMANAGER_CONFIG: file,
    // What compose gives the alertmanager service: the settings that are not secret.
    ...pick(env, /^ALERTMANAGER_(SLACK_CHANNEL|EMAIL_TO|SMTP_(?!PASSWORD).*)$/),
  });
  let text = "";
  try {
    text = await Deno.readTextFile(file);
  } catch { /* not written */ }
  return { ...out, file, text, dir };
}

function pick(env: Record<string, string>, names: RegExp): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => names.test(name)));
}

async function amtool(...args: string[]): Promise<string> {
  const out = await exec("amtool", args, { PATH: Deno.env.get("PATH") ?? "" });
  assertEquals(out.code, 0, `amtool ${args.join(" ")}:\n${out.stdout}${out.stderr}`);
  return out.stdout;
}

/** The receivers an alert with these labels goes to, as Alertmanager would route it. */
async function routes(file: string, ...labels: string[]): Promise<string> {
  return (await amtool("config", "routes", "test", `--config.file=${file}`, ...labels)).trim();
}

const CRITICAL = ["severity=critical", "alertname=VigilDown", "service=vigil"];
const WARNING = ["severity=warning", "alertname=HighLatencyP95", "service=vigil"];

interface Receiver {
  name: string;
  slack_configs?: Record<string, unknown>[];
  pagerduty_configs?: Record<string, unknown>[];
  email_configs?: Record<string, unknown>[];
  webhook_configs?: unknown[];
}
interface Route {
  receiver: string;
  matchers?: string[];
  continue?: boolean;
  routes?: Route[];
  group_wait?: string;
  group_interval?: string;
  repeat_interval?: string;
}

function config(text: string): { route: Route; receivers: Receiver[] } {
  return parse(text) as { route: Route; receivers: Receiver[] };
}

/** Checks a rendering with one or more receivers outside vigil, and returns that receiver. */
async function checkExternal(rendered: Rendered, integrations: string[]): Promise<Receiver> {
  assertEquals(rendered.code, 0, rendered.stderr);
  const logged = rendered.stdout.trim().split("\n");
  assertEquals(logged, [
    `alertmanager-config: critical alerts go to vigil and, outside vigil, to: ${
      integrations.join(" ")
    }`,
  ]);
  const check = await amtool("check-config", rendered.file);
  assert(/SUCCESS/.test(check) && /3 receivers/.test(check), check);
  assertEquals(await routes(rendered.file, ...CRITICAL), "external-critical,vigil-critical");
  assertEquals(await routes(rendered.file, ...WARNING), "vigil-warning");
  assertEquals(
    await routes(rendered.file, "severity=critical", "alertname=AvailabilitySLOBurnRatePage"),
    "external-critical,vigil-critical",
  );

  const { route, receivers } = config(rendered.text);
  const [external, vigil] = route.routes ?? [];
  assertEquals(external.receiver, "external-critical");
  assertEquals(external.matchers, ['severity="critical"']);
  assertEquals(external.continue, true);
  assertEquals(vigil.receiver, "vigil-critical");
  // The external page is as fast as vigil's.
  assertEquals(
    [external.group_wait, external.group_interval, external.repeat_interval],
    [vigil.group_wait, vigil.group_interval, vigil.repeat_interval],
  );
  const receiver = receivers.find((r) => r.name === "external-critical");
  assert(receiver, "no external-critical receiver");
  assertEquals(
    Object.keys(receiver).filter((k) => k.endsWith("_configs")).sort(),
    integrations.map((i) => `${i}_configs`).sort(),
  );
  // Every other line is the committed file's, in order.
  const committed = Deno.readTextFileSync(repoPath(ALERTMANAGER_CONFIG)).split("\n");
  const lines = rendered.text.split("\n");
  let at = 0;
  for (const line of committed) {
    while (at < lines.length && lines[at] !== line) at++;
    assert(at < lines.length, `committed line missing or out of order: ${line}`);
    at++;
  }
  return receiver;
}

/** The secret is in its file, which the configuration names; it is nowhere in the config. */
async function assertSecretFile(rendered: Rendered, path: unknown, secret: string) {
  assertEquals(path, `${rendered.dir}/am/secrets/${String(path).split("/").pop()}`);
  assertEquals(await Deno.readTextFile(String(path)), secret);
  assert(!rendered.text.includes(secret), "a secret is written into the configuration");
}

async function cleanup(rendered: Rendered) {
  await Deno.remove(rendered.dir, { recursive: true });
}

const SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/stand-in-slack-secret";
const PAGERDUTY_KEY = "stand-in-pagerduty-routing-key";
const SMTP_PASSWORD = "stand-in-smtp-password";
const EMAIL = {
  ALERTMANAGER_EMAIL_TO: "oncall@example.com, o'brien@example.com",
  ALERTMANAGER_SMTP_SMARTHOST: "smtp.example.com:587",
  ALERTMANAGER_SMTP_FROM: "vigil alerts <alertmanager@example.com>",
  ALERTMANAGER_SMTP_USERNAME: "alertmanager",
  ALERTMANAGER_SMTP_PASSWORD: SMTP_PASSWORD,
};

// ------------------------------------------------------------------------ the cases

amtoolTest("alertmanager config: nothing set renders the committed file, vigil only", async () => {
  // Empty, as compose passes an unset variable.
  const rendered = await render({
    ALERTMANAGER_SLACK_WEBHOOK_URL: "",
    ALERTMANAGER_SLACK_CHANNEL: "",
    ALERTMANAGER_PAGERDUTY_ROUTING_KEY: "",
    ALERTMANAGER_EMAIL_TO: "",
    ALERTMANAGER_SMTP_SMARTHOST: "",
    ALERTMANAGER_SMTP_FROM: "",
    ALERTMANAGER_SMTP_USERNAME: "",
    ALERTMANAGER_SMTP_PASSWORD: "",
    ALERTMANAGER_SMTP_REQUIRE_TLS: "",
  });
  try {
    assertEquals(rendered.code, 0, rendered.stderr);
    assertEquals(rendered.stderr, "");
    const logged = rendered.stdout.trim().split("\n");
    assertEquals(logged.length, 1, rendered.stdout);
    assert(logged[0].includes(ONLY_VIGIL), logged[0]);
    assertEquals(rendered.text, Deno.readTextFileSync(repoPath(ALERTMANAGER_CONFIG)));
    const check = await amtool("check-config", rendered.file);
    assert(/SUCCESS/.test(check) && /2 receivers/.test(check), check);
    assertEquals(await routes(rendered.file, ...CRITICAL), "vigil-critical");
    assertEquals(await routes(rendered.file, ...WARNING), "vigil-warning");
  } finally {
    await cleanup(rendered);
  }
});

amtoolTest("alertmanager config: Slack set → critical to Slack and vigil", async () => {
  const rendered = await render({
    ALERTMANAGER_SLACK_WEBHOOK_URL: SLACK_URL,
    ALERTMANAGER_SLACK_CHANNEL: "#pages",
  });
  try {
    const receiver = await checkExternal(rendered, ["slack"]);
    const [slack] = receiver.slack_configs ?? [];
    assertEquals([slack.channel, slack.send_resolved], ["#pages", true]);
    await assertSecretFile(rendered, slack.api_url_file, SLACK_URL);
  } finally {
    await cleanup(rendered);
  }
});

amtoolTest("alertmanager config: PagerDuty set → critical to PagerDuty and vigil", async () => {
  const rendered = await render({ ALERTMANAGER_PAGERDUTY_ROUTING_KEY: PAGERDUTY_KEY });
  try {
    const receiver = await checkExternal(rendered, ["pagerduty"]);
    const [pagerduty] = receiver.pagerduty_configs ?? [];
    assertEquals([pagerduty.severity, pagerduty.send_resolved], ["critical", true]);
    await assertSecretFile(rendered, pagerduty.routing_key_file, PAGERDUTY_KEY);
  } finally {
    await cleanup(rendered);
  }
});

amtoolTest("alertmanager config: email set → critical to email and vigil", async (t) => {
  await t.step("with a login", async () => {
    const rendered = await render(EMAIL);
    try {
      const receiver = await checkExternal(rendered, ["email"]);
      const [email] = receiver.email_configs ?? [];
      assertEquals(
        [email.to, email.from, email.smarthost, email.auth_username, email.require_tls],
        [
          EMAIL.ALERTMANAGER_EMAIL_TO, // a quote in a value stays a quote
          EMAIL.ALERTMANAGER_SMTP_FROM,
          EMAIL.ALERTMANAGER_SMTP_SMARTHOST,
          EMAIL.ALERTMANAGER_SMTP_USERNAME,
          true,
        ],
      );
      await assertSecretFile(rendered, email.auth_password_file, SMTP_PASSWORD);
    } finally {
      await cleanup(rendered);
    }
  });
  await t.step("a relay without login or TLS", async () => {
    const rendered = await render({
      ALERTMANAGER_EMAIL_TO: "oncall@example.com",
      ALERTMANAGER_SMTP_SMARTHOST: "relay.internal:25",
      ALERTMANAGER_SMTP_FROM: "alertmanager@example.com",
      ALERTMANAGER_SMTP_REQUIRE_TLS: "false",
    });
    try {
      const [email] = (await checkExternal(rendered, ["email"])).email_configs ?? [];
      assertEquals([email.require_tls, email.auth_username, email.auth_password_file], [
        false,
        undefined,
        undefined,
      ]);
    } finally {
      await cleanup(rendered);
    }
  });
});

amtoolTest("alertmanager config: all three set → one receiver with the three", async () => {
  const rendered = await render({
    ...EMAIL,
    ALERTMANAGER_SLACK_WEBHOOK_URL: SLACK_URL,
    ALERTMANAGER_PAGERDUTY_ROUTING_KEY: PAGERDUTY_KEY,
  });
  try {
    await checkExternal(rendered, ["slack", "pagerduty", "email"]);
  } finally {
    await cleanup(rendered);
  }
});

Deno.test("alertmanager config: a half-configured receiver stops the start, naming it", async (t) => {
  const cases: [string, Record<string, string>, RegExp][] = [
    [
      "recipients without a server",
      { ALERTMANAGER_EMAIL_TO: "oncall@example.com", ALERTMANAGER_SMTP_FROM: "a@example.com" },
      /ALERTMANAGER_SMTP_SMARTHOST is not/,
    ],
    [
      "recipients without a sender",
      { ALERTMANAGER_EMAIL_TO: "oncall@example.com", ALERTMANAGER_SMTP_SMARTHOST: "smtp:587" },
      /ALERTMANAGER_SMTP_FROM is not/,
    ],
    [
      "a server without recipients",
      { ALERTMANAGER_SMTP_SMARTHOST: "smtp.example.com:587" },
      /ALERTMANAGER_EMAIL_TO is not/,
    ],
    [
      "a password without recipients",
      { ALERTMANAGER_SMTP_PASSWORD: SMTP_PASSWORD },
      /ALERTMANAGER_EMAIL_TO is not/,
    ],
    [
      "a username without a password",
      { ...EMAIL, ALERTMANAGER_SMTP_PASSWORD: "" },
      /ALERTMANAGER_SMTP_USERNAME is set but ALERTMANAGER_SMTP_PASSWORD is not/,
    ],
    [
      "a password without a username",
      { ...EMAIL, ALERTMANAGER_SMTP_USERNAME: "" },
      /ALERTMANAGER_SMTP_PASSWORD is set but ALERTMANAGER_SMTP_USERNAME is not/,
    ],
    [
      "a smarthost without a port",
      { ...EMAIL, ALERTMANAGER_SMTP_SMARTHOST: "smtp.example.com" },
      /ALERTMANAGER_SMTP_SMARTHOST must be host:port/,
    ],
    [
      "require TLS neither true nor false",
      { ...EMAIL, ALERTMANAGER_SMTP_REQUIRE_TLS: "yes" },
      /ALERTMANAGER_SMTP_REQUIRE_TLS must be true or false/,
    ],
    [
      "a value on two lines",
      { ...EMAIL, ALERTMANAGER_EMAIL_TO: "a@example.com\n    b: injected" },
      /ALERTMANAGER_EMAIL_TO must be one line/,
    ],
    [
      "a Slack channel without a webhook",
      { ALERTMANAGER_SLACK_CHANNEL: "#pages" },
      /ALERTMANAGER_SLACK_CHANNEL is set but ALERTMANAGER_SLACK_WEBHOOK_URL is not/,
    ],
  ];
  for (const [name, env, message] of cases) {
    await t.step(name, async () => {
      const rendered = await render(env);
      try {
        assertEquals(rendered.code, 1, rendered.stdout);
        assertEquals(rendered.stdout, "");
        const lines = rendered.stderr.trim().split("\n");
        assertEquals(lines.length, 1, rendered.stderr);
        assertMatch(lines[0], message);
        assertMatch(lines[0], /^alertmanager-config: .*docs\/observability\.md/);
      } finally {
        await cleanup(rendered);
      }
    });
  }

  await t.step("a template without its marker lines", async () => {
    const template = await Deno.makeTempFile({ prefix: "vigil-am-template-" });
    try {
      const text = Deno.readTextFileSync(repoPath(ALERTMANAGER_CONFIG));
      await Deno.writeTextFile(
        template,
        text.split("\n").filter((l) => !l.includes("# @external-critical-route")).join("\n"),
      );
      const rendered = await render(
        { ALERTMANAGER_PAGERDUTY_ROUTING_KEY: PAGERDUTY_KEY },
        template,
      );
      try {
        assertEquals(rendered.code, 1, rendered.stdout);
        assertMatch(rendered.stderr, /must have each of these lines once/);
      } finally {
        await cleanup(rendered);
      }
    } finally {
      await Deno.remove(template);
    }
  });
});

// ------------------------------------------------------------------------ compose wiring

interface ComposeService {
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
}

Deno.test("alertmanager config: compose runs the render script on the committed file", () => {
  const compose = parse(Deno.readTextFileSync(repoPath("compose.yaml"))) as {
    services: Record<string, ComposeService>;
  };
  const am = compose.services.alertmanager;
  const env = am.environment ?? {};
  const mounts = new Map(
    (am.volumes ?? []).map((v) => v.split(":")).map(([from, to]) => [to, from]),
  );
  const [sh, script] = am.entrypoint ?? [];
  assertEquals(sh, "/bin/sh");
  assertEquals(mounts.get(script), "./observability/compose/alertmanager-config.sh");
  assertEquals(mounts.get(env.ALERTMANAGER_TEMPLATE), `./${ALERTMANAGER_CONFIG}`);
  assertEquals(mounts.get("/etc/alertmanager/secrets"), "alertmanager_secrets");
  assertEquals(env.ALERTMANAGER_CONFIG, "/etc/alertmanager/alertmanager.yml");
  // The script execs its arguments: Alertmanager, on the file it wrote.
  assertEquals(am.command?.[0], "/bin/alertmanager");
  assert(am.command?.includes(`--config.file=${env.ALERTMANAGER_CONFIG}`), String(am.command));

  // Secrets reach Alertmanager only as files, through secrets-init, like the webhook token.
  const secrets = [
    "ALERTMANAGER_SLACK_WEBHOOK_URL",
    "ALERTMANAGER_PAGERDUTY_ROUTING_KEY",
    "ALERTMANAGER_SMTP_PASSWORD",
  ];
  const init = compose.services["secrets-init"].environment ?? {};
  for (const name of secrets) {
    assertEquals(init[name], `\${${name}:-}`);
    assert(!(name in env), `${name} is in the alertmanager service's environment`);
  }
  const settings = [
    "ALERTMANAGER_SLACK_CHANNEL",
    "ALERTMANAGER_EMAIL_TO",
    "ALERTMANAGER_SMTP_SMARTHOST",
    "ALERTMANAGER_SMTP_FROM",
    "ALERTMANAGER_SMTP_USERNAME",
    "ALERTMANAGER_SMTP_REQUIRE_TLS",
  ];
  for (const name of settings) assertEquals(env[name], `\${${name}:-}`);
  // Off by default: .env.example leaves every one of them empty.
  const example = Deno.readTextFileSync(repoPath(".env.example"));
  for (const name of [...secrets, ...settings]) {
    assertMatch(example, new RegExp(`^${name}=$`, "m"));
  }
});
