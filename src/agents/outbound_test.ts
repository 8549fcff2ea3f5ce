import fc from "fast-check";
import { assert, assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { closedPort, serveLocal } from "../../tests/support/servers.ts";
import {
  assertOutboundAllowed,
  METADATA_ADDRESSES,
  outboundFetch,
  type OutboundPolicy,
  refusal,
} from "./outbound.ts";
import { CallerError } from "./types.ts";

const noDns = () => Promise.reject(new Error("an IP literal must not be resolved"));
const closed: OutboundPolicy = { allowPrivate: false, resolve: noDns };
const open: OutboundPolicy = { allowPrivate: true, resolve: noDns };
const METADATA_REASON = "the cloud metadata address is never allowed";
const runs = Number(Deno.env.get("VIGIL_PROPERTY_RUNS") ?? 100);
const seed = Deno.env.get("VIGIL_PROPERTY_SEED");
const property = { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) };

type Kind = "metadata" | "private" | "public";

/** Every address form, as text handed to `refusal` and (when a URL can hold it) as a URL host. */
const TABLE: [string, Kind][] = [
  // IPv4 loopback in every spelling (WHATWG URL normalizes the numeric ones to dotted)
  ["127.0.0.1", "private"],
  ["127.255.255.254", "private"],
  ["2130706433", "private"],
  ["0x7f.1", "private"],
  ["0x7f000001", "private"],
  ["017700000001", "private"],
  ["0177.0.0.1", "private"],
  ["127.1", "private"],
  // private, link-local, CGNAT, unspecified, multicast, broadcast, reserved, benchmarking
  ["10.0.0.1", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["192.168.1.1", "private"],
  ["169.254.1.1", "private"],
  ["100.64.0.1", "private"],
  ["100.127.255.255", "private"],
  ["0.0.0.0", "private"],
  ["0", "private"],
  ["224.0.0.1", "private"],
  ["239.255.255.250", "private"],
  ["255.255.255.255", "private"],
  ["240.0.0.1", "private"],
  ["192.0.0.8", "private"],
  ["192.0.2.1", "private"],
  ["198.51.100.1", "private"],
  ["203.0.113.1", "private"],
  ["198.18.0.1", "private"],
  ["198.19.255.255", "private"],
  // IPv6 loopback, unspecified, link-local (with a zone), unique-local, multicast, reserved
  ["::1", "private"],
  ["0:0:0:0:0:0:0:1", "private"],
  ["::", "private"],
  ["fe80::1", "private"],
  ["fe80::1%eth0", "private"],
  ["fc00::1", "private"],
  ["fd12:3456::1", "private"],
  ["fec0::1", "private"],
  ["ff02::1", "private"],
  ["2001:db8::1", "private"],
  ["2001:2::1", "private"],
  ["100::1", "private"],
  ["64:ff9b:1::1", "private"], // local-use NAT64 (RFC 8215)
  // IPv4 embedded in IPv6: mapped, compatible, translated, NAT64, 6to4, Teredo
  ["::ffff:127.0.0.1", "private"],
  ["::ffff:7f00:1", "private"],
  ["::FFFF:7F00:0001", "private"],
  ["0:0:0:0:0:ffff:7f00:1", "private"],
  ["::ffff:10.0.0.1", "private"],
  ["::ffff:c0a8:101", "private"],
  ["::127.0.0.1", "private"],
  ["::7f00:1", "private"],
  ["::ffff:0:7f00:1", "private"],
  ["64:ff9b::127.0.0.1", "private"],
  ["64:ff9b::7f00:1", "private"],
  ["64:ff9b::a00:1", "private"],
  ["2002:7f00:1::", "private"],
  ["2002:c0a8:101::1", "private"],
  ["2001:0:4136:e378:8000:63bf:80ff:fffe", "private"], // Teredo, client 127.0.0.1
  ["2001:0:a00:1::f7f7:f7f7", "private"], // Teredo, server 10.0.0.1
  // cloud metadata, in any form: refused even with private targets allowed
  ["169.254.169.254", "metadata"],
  ["2852039166", "metadata"],
  ["0xa9fea9fe", "metadata"],
  ["0251.0376.0251.0376", "metadata"],
  ["169.254.43518", "metadata"],
  ["::ffff:169.254.169.254", "metadata"],
  ["::ffff:a9fe:a9fe", "metadata"],
  ["::a9fe:a9fe", "metadata"],
  ["::ffff:0:a9fe:a9fe", "metadata"],
  ["64:ff9b::a9fe:a9fe", "metadata"],
  ["2002:a9fe:a9fe::", "metadata"],
  ["2001:0:4136:e378:8000:63bf:5601:5601", "metadata"], // Teredo, client 169.254.169.254
  ["169.254.170.2", "metadata"],
  ["::ffff:a9fe:aa02", "metadata"],
  ["fd00:ec2::254", "metadata"],
  ["fd00:0ec2:0000:0000:0000:0000:0000:0254", "metadata"],
  ["FD00:EC2::254", "metadata"],
  ["100.100.100.200", "metadata"],
  ["::ffff:6464:64c8", "metadata"],
  ["168.63.129.16", "metadata"],
  ["192.0.0.192", "metadata"],
  ["169.254.0.23", "metadata"],
  // public
  ["8.8.8.8", "public"],
  ["134744072", "public"],
  ["0x8080808", "public"],
  ["1.1.1.1", "public"],
  ["172.32.0.1", "public"],
  ["100.128.0.1", "public"],
  ["169.255.0.1", "public"],
  ["2001:4860:4860::8888", "public"],
  ["2606:4700::1111", "public"],
  ["::ffff:8.8.8.8", "public"],
  ["::ffff:808:808", "public"],
  ["64:ff9b::808:808", "public"],
  ["2002:808:808::1", "public"],
  ["2001:0:4136:e378:8000:63bf:f7f7:f7f7", "public"], // Teredo, server and client public
];

function urlOf(host: string, scheme = "http"): URL {
  return new URL(`${scheme}://${host.includes(":") ? `[${host}]` : host}/`);
}

Deno.test("outbound: every address form, with private targets off and on", async () => {
  for (const [form, kind] of TABLE) {
    const off = refusal(form, closed);
    const on = refusal(form, open);
    if (kind === "metadata") {
      assertEquals([off, on], [METADATA_REASON, METADATA_REASON], form);
    } else if (kind === "private") {
      assert(off?.startsWith("private and loopback addresses are not allowed"), `${form}: ${off}`);
      assertEquals(on, undefined, form);
    } else {
      assertEquals([off, on], [undefined, undefined], form);
    }
    if (form.includes("%")) continue; // a URL cannot carry a zone id (see below)
    // The same through a URL, as new URL() normalizes it; a literal is never resolved.
    const url = urlOf(form);
    for (const policy of [closed, open]) {
      const refused = kind === "metadata" || (kind === "private" && !policy.allowPrivate);
      if (refused) {
        await assertRejects(() => assertOutboundAllowed(url, policy), CallerError, "refused");
      } else {
        await assertOutboundAllowed(url, policy);
      }
    }
  }
});

Deno.test("outbound: what new URL() hands to the check", () => {
  assertEquals(new URL("http://[::ffff:127.0.0.1]/").hostname, "[::ffff:7f00:1]");
  assertEquals(new URL("http://2130706433/").hostname, "127.0.0.1");
  assertEquals(new URL("http://0x7f.1/").hostname, "127.0.0.1");
  assertEquals(new URL("http://017700000001/").hostname, "127.0.0.1");
  assertEquals(new URL("http://[::127.0.0.1]/").hostname, "[::7f00:1]");
  assertEquals(new URL("http://[FD00:0EC2:0:0:0:0:0:0254]/").hostname, "[fd00:ec2::254]");
  // A zone id is not valid in a URL: such a target is refused before any check.
  let invalid = false;
  try {
    new URL("http://[fe80::1%25eth0]/");
  } catch {
    invalid = true;
  }
  assert(invalid);
});

Deno.test("outbound: scheme, credentials, localhost and resolved names", async () => {
  await assertOutboundAllowed(new URL("http://127.0.0.1:9/"), open);
  for (const url of ["file:///etc/passwd", "ftp://example.com/", "gopher://example.com/"]) {
    await assertRejects(
      () => assertOutboundAllowed(new URL(url), open),
      CallerError,
      "URLs are not allowed; use http or https",
    );
  }
  for (const url of ["http://user:pass@example.com/", "https://user@example.com/"]) {
    await assertRejects(
      () => assertOutboundAllowed(new URL(url), open),
      CallerError,
      "URLs with credentials (user:password@) are not allowed",
    );
  }
  for (const url of ["http://localhost:8000/", "http://localhost./", "http://a.localhost/"]) {
    await assertRejects(
      () => assertOutboundAllowed(new URL(url), closed),
      CallerError,
      "private and loopback",
    );
    await assertOutboundAllowed(new URL(url), open);
  }
  await assertRejects(() => assertOutboundAllowed(new URL("http://[::1]/"), closed), CallerError);
  await assertRejects(
    () => assertOutboundAllowed(new URL("http://169.254.169.254/latest"), open),
    CallerError,
    "metadata",
  );
  await assertRejects(
    () => assertOutboundAllowed(new URL("http://no-such-host.invalid/"), { allowPrivate: true }),
    CallerError,
    "cannot resolve",
  );

  // A name is refused when any of its answers is: which one gets used is not ours to pick.
  const answers = (...a: string[]): OutboundPolicy["resolve"] => () => Promise.resolve(a);
  const name = new URL("https://service.example/");
  await assertOutboundAllowed(name, { allowPrivate: false, resolve: answers("8.8.8.8") });
  for (const bad of [["10.0.0.5"], ["8.8.8.8", "::ffff:7f00:1"], ["fe80::1%eth0"]]) {
    await assertRejects(
      () => assertOutboundAllowed(name, { allowPrivate: false, resolve: answers(...bad) }),
      CallerError,
      "private and loopback",
    );
  }
  await assertRejects(
    () => assertOutboundAllowed(name, { allowPrivate: true, resolve: answers("169.254.169.254") }),
    CallerError,
    "metadata",
  );
  await assertRejects(
    () => assertOutboundAllowed(name, { allowPrivate: true, resolve: answers() }),
    CallerError,
    "cannot resolve",
  );
});

// --- Property: any private or metadata IPv4, in any spelling, is refused -----------------------

const PRIVATE_V4: [number, number][] = [
  [0x7f000000, 8], // loopback
  [0x0a000000, 8], // private
  [0xac100000, 12],
  [0xc0a80000, 16],
  [0xa9fe0000, 16], // link-local
  [0x64400000, 10], // CGNAT
  [0x00000000, 8], // "this network"
];

function inRange([base, bits]: [number, number], random: number): number {
  const host = bits === 0 ? 0xffffffff : (2 ** (32 - bits)) - 1;
  return (base + (random & host)) >>> 0;
}

const hex4 = (n: number) => [(n >>> 16).toString(16), (n & 0xffff).toString(16)];
const dotted = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join(".");

/** The ways to write IPv4 `n` that end up connecting to it. */
const FORMS: ((n: number) => string)[] = [
  dotted,
  (n) => String(n),
  (n) => `0x${n.toString(16)}`,
  (n) => `0${n.toString(8)}`,
  (n) => `::ffff:${dotted(n)}`,
  (n) => `::ffff:${hex4(n).join(":")}`,
  (n) => `::FFFF:${hex4(n).join(":").toUpperCase()}`,
  (n) => `::${hex4(n).join(":")}`,
  (n) => `64:ff9b::${hex4(n).join(":")}`,
  (n) => `64:ff9b::${dotted(n)}`,
  (n) => `2002:${hex4(n).map((h) => h.padStart(4, "0")).join(":")}::1`,
];

const v4Metadata = METADATA_ADDRESSES.filter((a) => !a.includes(":")).map((a) =>
  a.split(".").reduce((n, octet) => n * 256 + Number(octet), 0)
);

/** Refused both as an address and as the host of a URL. */
async function checkedBoth(form: string, policy: OutboundPolicy, expected: string) {
  const reason = refusal(form, policy);
  assert(reason?.includes(expected), `${form}: ${reason}`);
  await assertRejects(() => assertOutboundAllowed(urlOf(form), policy), CallerError, expected);
}

// A random link-local address may be a metadata one: refused either way, for either reason.
const REFUSED = "allowed";

Deno.test("outbound property: private IPv4 in any form is refused with private targets off", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...PRIVATE_V4),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom(...FORMS),
      (range, random, form) => checkedBoth(form(inRange(range, random)), closed, REFUSED),
    ),
    property,
  );
});

Deno.test("outbound property: metadata addresses in any form are always refused", async () => {
  const v6Forms = fc.constantFrom(
    "fd00:ec2::254",
    "fd00:0ec2:0000:0000:0000:0000:0000:0254",
    "FD00:EC2:0:0:0:0:0:254",
    "fd00:ec2:0::0:254",
  );
  const forms = fc.oneof(
    fc.tuple(fc.constantFrom(...v4Metadata), fc.constantFrom(...FORMS)).map(([n, f]) => f(n)),
    v6Forms,
  );
  await fc.assert(
    fc.asyncProperty(forms, fc.boolean(), async (form, allowPrivate) => {
      await checkedBoth(form, { allowPrivate, resolve: noDns }, "metadata");
    }),
    property,
  );
});

// --- The address checked is the address connected to ------------------------------------------

const TLS = {
  ca: Deno.readTextFileSync(new URL("./testdata/ca.pem", import.meta.url)),
  cert: Deno.readTextFileSync(new URL("./testdata/pinned.test.pem", import.meta.url)),
  key: Deno.readTextFileSync(new URL("./testdata/pinned.test.key", import.meta.url)),
};

/** A policy whose resolver answers `answers` and counts its calls. */
function resolving(allowPrivate: boolean, ...answers: string[][]) {
  const policy = {
    allowPrivate,
    calls: 0,
    caCerts: [TLS.ca],
    resolve: () => Promise.resolve(answers[Math.min(policy.calls++, answers.length - 1)]),
  };
  return policy;
}

const signal = () => AbortSignal.timeout(5000);

Deno.test("outbound: DNS is resolved once, so a rebinding answer is never connected to", async () => {
  let hits = 0;
  await using server = serveLocal(() => (hits++, new Response("loopback secret")));
  // First answer public, every later one loopback: a check-then-fetch would reach the server.
  const policy = resolving(false, ["1.1.1.1"], ["127.0.0.1"]);
  const outcome = await outboundFetch(
    new URL(`http://rebind.test:${server.port}/`),
    { signal: AbortSignal.timeout(1000) },
    policy,
  ).then((res) => res.body?.cancel(), (error: Error) => String(error.cause ?? error));
  assertEquals(policy.calls, 1);
  assertEquals(hits, 0);
  assert(!String(outcome).includes("127.0.0.1"), String(outcome));
});

Deno.test("outbound: a name resolving to a private address is refused, and nothing is sent", async () => {
  let hits = 0;
  await using server = serveLocal(() => (hits++, new Response("x")));
  const policy = resolving(false, ["127.0.0.1"]);
  await assertRejects(
    () =>
      outboundFetch(new URL(`http://inside.test:${server.port}/`), { signal: signal() }, policy),
    CallerError,
    "refused inside.test",
  );
  assertEquals([policy.calls, hits], [1, 0]);
});

Deno.test("outbound: http connects to the resolved address with the original Host", async () => {
  await using server = serveLocal((req) =>
    new Response(
      `${new URL(req.url).pathname}${new URL(req.url).search} ${req.headers.get("host")}`,
    )
  );
  // pinned.test resolves nowhere but through the policy: an answer proves the pin was used.
  const policy = resolving(true, ["127.0.0.1"]);
  const res = await outboundFetch(
    new URL(`http://pinned.test:${server.port}/p?q=1`),
    { method: "GET", headers: { host: "evil.example" }, signal: signal() },
    policy,
  );
  assertEquals(await res.text(), `/p?q=1 pinned.test:${server.port}`);
  assertEquals(policy.calls, 1);
});

Deno.test("outbound: https is pinned too and still verifies the certificate's name", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: TLS.cert, key: TLS.key, onListen: () => {} },
    (req) => new Response(`${new URL(req.url).pathname} ${req.method}`),
  );
  try {
    const policy = resolving(true, ["127.0.0.2", "127.0.0.1"]); // 127.0.0.2 refuses: next one
    const res = await outboundFetch(
      new URL(`https://pinned.test:${server.addr.port}/tls`),
      { method: "POST", body: "x", signal: signal() },
      policy,
    );
    assertEquals(await res.text(), "/tls POST");
    assertEquals(policy.calls, 1);

    // Same address, a name the certificate does not carry: TLS refuses it.
    const other = await outboundFetch(
      new URL(`https://other.test:${server.addr.port}/`),
      { signal: signal() },
      resolving(true, ["127.0.0.1"]),
    ).then(() => "answered", (error: Error) => String(error.cause));
    assert(other.includes("certificate"), other);

    // Nothing listening at any answer: a connection error, as fetch reports one.
    const port = closedPort();
    const down = await outboundFetch(
      new URL(`https://pinned.test:${port}/`),
      { signal: signal() },
      resolving(true, ["127.0.0.1"]),
    ).then(() => "answered", (error: Error) => String(error.cause));
    assert(down.includes("client error (Connect)"), down);
  } finally {
    await server.shutdown();
  }
});

Deno.test("outbound: redirects are returned, not followed", async () => {
  await using server = serveLocal(() =>
    new Response(null, { status: 302, headers: { location: "http://169.254.169.254/" } })
  );
  const res = await outboundFetch(
    new URL(`http://pinned.test:${server.port}/`),
    { signal: signal() },
    resolving(true, ["127.0.0.1"]),
  );
  assertEquals([res.status, res.headers.get("location")], [302, "http://169.254.169.254/"]);
});
