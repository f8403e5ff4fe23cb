// splitLines: how a log file's bytes become journal messages, and the offsets that name them
// (a resend from any acknowledged offset must cut at the same places, or its Nats-Msg-Ids differ).
import { describe, expect, test } from "vitest";
import { MAX_LINE, splitLines } from "../../src/agent/journal.js";

const b = (s: string) => Buffer.from(s, "utf8");
const text = (ls: { data: Uint8Array; end: number }[]) => ls.map((l) => [Buffer.from(l.data).toString("utf8"), l.end]);

describe("splitLines", () => {
  test.each([
    ["whole lines", "a\nbb\n", 0, false, [["a", 2], ["bb", 5]]],
    ["offsets from the read's base", "a\nbb\n", 100, false, [["a", 102], ["bb", 105]]],
    ["an unfinished last line waits", "a\nbb", 0, false, [["a", 2]]],
    ["an unfinished last line is taken when the task is gone", "a\nbb", 0, true, [["a", 2], ["bb", 4]]],
    ["empty lines are lines", "\n\n", 0, false, [["", 1], ["", 2]]],
    ["nothing whole", "abc", 0, false, []],
  ] as const)("%s", (_, input, base, rest, want) => {
    expect(text(splitLines(b(input), base, rest))).toEqual(want);
  });

  test("a line longer than MAX_LINE goes in pieces, cut at the same places whichever acknowledged offset a read starts from", () => {
    const long = "x".repeat(MAX_LINE * 2 + 10);
    const all = splitLines(b(`${long}\nend\n`), 0);
    expect(all.map((l) => l.data.length)).toEqual([MAX_LINE, MAX_LINE, 10, 3]);
    expect(all.map((l) => l.end)).toEqual([MAX_LINE, 2 * MAX_LINE, 2 * MAX_LINE + 11, 2 * MAX_LINE + 15]);
    // Resent from the first piece's end: the same later pieces, the same offsets.
    const again = splitLines(b(`${long}\nend\n`).subarray(MAX_LINE), MAX_LINE);
    expect(again.map((l) => l.end)).toEqual(all.slice(1).map((l) => l.end));
    // Read while the line is still being written: whole pieces only, the rest waits.
    const partial = splitLines(b(long), 0);
    expect(partial.map((l) => l.end)).toEqual([MAX_LINE, 2 * MAX_LINE]);
  });
});
