import { assertEquals } from "../../tests/support/assert.ts";
import { formatDuration } from "./duration.ts";

Deno.test("formatDuration: days, hours, minutes; seconds only below an hour", () => {
  assertEquals(formatDuration(0), "0 s");
  assertEquals(formatDuration(45_000), "45 s");
  assertEquals(formatDuration(61_000), "1 min 1 s");
  assertEquals(formatDuration(3_661_000), "1 h 1 min");
  assertEquals(formatDuration((86_400 + 61) * 1000), "1 d 1 min");
  assertEquals(formatDuration(-5), "0 s");
});
