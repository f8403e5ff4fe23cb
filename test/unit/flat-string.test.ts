// flatString copies a string whole: the same characters for every kind of string a KV key or
// subject can hold, and for any other (unicode, lone surrogates, quotes and escapes).
import { describe, expect, it } from "vitest";
import { flatString } from "../../src/util/flat-string.js";

describe("flatString", () => {
  it("keeps every character of keys cut from subjects, and of any other string", () => {
    const subject = "$KV.flotilla-units.web=40frontend-12.service";
    const cases = [
      subject.substring(19),
      subject.substring(4, 17),
      "short",
      "",
      `quote " and backslash \\ and \n newline`,
      "ünïcode ☃ 𝄞 emoji 🚀 and a lone \ud800 surrogate \udfff",
      "x".repeat(10_000),
    ];
    for (const s of cases) expect(flatString(s)).toBe(s);
    for (let code = 0; code < 0x10000; code += 7) {
      const s = `${"a".repeat(12)}${String.fromCharCode(code)}${"b".repeat(3)}`;
      expect(flatString(s), `U+${code.toString(16)}`).toBe(s);
    }
  });
});
