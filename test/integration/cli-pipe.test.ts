// `flotilla ... | head`: a reader that goes away early is not an error. The CLI exits 0 with
// nothing on stderr, as cat does, instead of dying on an unhandled EPIPE with a stack trace.
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { BIN } from "../helpers/cli.js";

function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    c.stderr.on("data", (d) => (stderr += String(d)));
    // The reader is gone before the CLI writes its first byte: every write meets EPIPE.
    c.stdout.destroy();
    c.once("error", reject);
    c.once("exit", (code) => resolve({ code, stderr }));
  });
}

describe("the CLI's stdout closed by its reader", () => {
  it("exits 0 quietly", async () => {
    const r = await runWithClosedStdout(["statecharts", "--format", "json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});
