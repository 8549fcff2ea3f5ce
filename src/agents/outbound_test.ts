import { assertEquals, assertRejects } from "../../tests/support/assert.ts";
import { assertOutboundAllowed, refusal } from "./outbound.ts";
import { CallerError } from "./types.ts";

const closed = { allowPrivate: false };
const open = { allowPrivate: true };

Deno.test("outbound: the metadata address is refused even when private targets are allowed", () => {
  for (const address of ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"]) {
    assertEquals(refusal(address, open), "the cloud metadata address is never allowed");
  }
});

Deno.test("outbound: private and loopback addresses follow ALLOW_PRIVATE_TARGETS", () => {
  for (
    const address of [
      "127.0.0.1",
      "10.1.2.3",
      "172.20.0.1",
      "192.168.1.1",
      "169.254.1.1",
      "100.64.0.1",
      "::1",
      "fd12::1",
      "fe80::1",
      "::ffff:10.0.0.1",
      "0.0.0.0",
    ]
  ) {
    assertEquals(typeof refusal(address, closed), "string", address);
    assertEquals(refusal(address, open), undefined, address);
  }
  for (const address of ["8.8.8.8", "172.32.0.1", "2001:4860::8888"]) {
    assertEquals(refusal(address, closed), undefined, address);
  }
});

Deno.test("outbound: URLs are checked by scheme, host name and resolved address", async () => {
  await assertOutboundAllowed(new URL("http://127.0.0.1:9/"), open);
  await assertRejects(
    () => assertOutboundAllowed(new URL("http://localhost:8000/"), closed),
    CallerError,
    "private and loopback",
  );
  await assertRejects(() => assertOutboundAllowed(new URL("http://[::1]/"), closed), CallerError);
  await assertRejects(
    () => assertOutboundAllowed(new URL("http://169.254.169.254/latest"), open),
    CallerError,
    "metadata",
  );
  await assertRejects(
    () => assertOutboundAllowed(new URL("file:///etc/passwd"), open),
    CallerError,
    "file: URLs are not allowed",
  );
  await assertRejects(
    () => assertOutboundAllowed(new URL("http://no-such-host.invalid/"), open),
    CallerError,
    "cannot resolve",
  );
});
