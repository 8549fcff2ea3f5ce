/**
 * The README's walk-through of an episode, run as written (bash, curl, jq) against a real vigil,
 * twice: every `# →` answer it shows must be what vigil answers, both times (it must never race
 * the every-minute job).
 */
import { assert } from "./support/assert.ts";
import { which } from "./support/cluster.ts";
import { testDatabase } from "./support/database.ts";
import { startVigil } from "./support/process.ts";

const ADMIN_KEY = "vgl_" + "r".repeat(40);
const README = new URL("../README.md", import.meta.url);
const MARK = "<!-- walkthrough: run and checked by tests/readme_test.ts -->";

/** The block after the mark, and the answers it expects (after which command, what JSON). */
export function walkthrough(readme: string): { script: string; expected: unknown[] } {
  const after = readme.slice(readme.indexOf(MARK) + MARK.length);
  const block = /```sh\n([\s\S]*?)```/.exec(after);
  if (!readme.includes(MARK) || !block) throw new Error("the README has no walk-through block");
  const expected: unknown[] = [];
  const lines = block[1].split("\n").map((line) => {
    const answer = /^# → (.*)$/.exec(line);
    if (!answer) return line;
    expected.push(JSON.parse(answer[1]));
    // The answer of the command just before: saved for the test to compare.
    return `cp "$OUT/last" "$OUT/${expected.length}.json"`;
  });
  // Every answer is kept as the last one (curl as written, its output also saved).
  const script = `curl() { command curl "$@" | tee "$OUT/last"; }\n${lines.join("\n")}`;
  return { script, expected };
}

/** `actual` has everything `expected` has: objects by their keys, arrays element by element. */
function contains(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length &&
      expected.every((e, i) => contains(actual[i], e));
  }
  if (expected !== null && typeof expected === "object") {
    return actual !== null && typeof actual === "object" &&
      Object.entries(expected).every(([k, v]) =>
        contains((actual as Record<string, unknown>)[k], v)
      );
  }
  return actual === expected;
}

Deno.test({
  name: "README: the episode walk-through answers as written, every time",
  ignore: !(which("bash") && which("curl") && which("jq")),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { script: written, expected } = walkthrough(await Deno.readTextFile(README));
    assert(expected.length >= 6, "the walk-through shows its answers");
    await using db = await testDatabase();
    await using vigil = await startVigil({ DATABASE_URL: db.url, ADMIN_API_KEY: ADMIN_KEY });
    // The README's URL is the dev server's; this vigil listens on a port of its own.
    const script = written.replace("VIGIL=http://127.0.0.1:8000", `VIGIL=${vigil.url}`);
    assert(script !== written, "the walk-through sets VIGIL");
    for (const round of [1, 2]) {
      const out = await Deno.makeTempDir({ prefix: "vigil-readme-" });
      try {
        const run = await new Deno.Command("bash", {
          args: ["-euo", "pipefail", "-c", script],
          env: { VIGIL_KEY: ADMIN_KEY, OUT: out },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = new TextDecoder().decode(run.stderr);
        assert(run.success, `round ${round}: the block failed: ${stderr}`);
        for (const [i, want] of expected.entries()) {
          const got = JSON.parse(await Deno.readTextFile(`${out}/${i + 1}.json`));
          assert(
            contains(got, want),
            `round ${round}, answer ${i + 1}: expected ${JSON.stringify(want)}, got ${
              JSON.stringify(got)
            }`,
          );
        }
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    }
  },
});
