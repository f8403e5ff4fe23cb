// The shortcuts the engine's read of 100,000 unit files goes through give what the rules they
// skip give: normalizeUnitName's whole-name test, splitWords on values without quotes or
// escapes, isValidGlob on patterns without an escape or a class. Random inputs over alphabets
// chosen to hit the edges ('.', '@', spaces of every kind, metacharacters).
import { describe, expect, it } from "vitest";
import { normalizeByRules, normalizeUnitName } from "../../src/unit/names.js";
import { splitWords } from "../../src/unit/words.js";
import { globMatch, isValidGlob } from "../../src/unit/match.js";
import { prng as random } from "../helpers/prng.js";

function pick(rnd: () => number, alphabet: string, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
  return s;
}

function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

describe("normalizeUnitName's shortcut", () => {
  it("names what the rules name, and throws what they throw", () => {
    const rnd = random(1);
    const suffixes = ["", ".service", ".socket", "..service", ".service.", "@.service", ".servic", ".service.service"];
    let shortcut = 0;
    for (let i = 0; i < 20_000; i++) {
      const stem = pick(rnd, "ab.@-_:9 /Z", 1 + Math.floor(rnd() * 6));
      const name = stem + suffixes[Math.floor(rnd() * suffixes.length)];
      expect(outcome(() => normalizeUnitName(name)), JSON.stringify(name)).toEqual(outcome(() => normalizeByRules(name)));
      if (/^[^.@].*[^.]\.service$/.test(name) && !/[ /]/.test(name)) shortcut++;
    }
    for (const n of [247, 248, 249]) {
      const name = `${"a".repeat(n)}.service`;
      expect(outcome(() => normalizeUnitName(name))).toEqual(outcome(() => normalizeByRules(name)));
    }
    // Enough of the cases were names the shortcut takes.
    expect(shortcut).toBeGreaterThan(2000);
  });
});

describe("splitWords without quotes or escapes", () => {
  it("splits at runs of spaces, tabs, newlines and carriage returns, each word as written", () => {
    const rnd = random(2);
    for (let i = 0; i < 20_000; i++) {
      const value = pick(rnd, "ab*-=. \t\n\r", Math.floor(rnd() * 12));
      const words = value.split(/[ \t\n\r]+/).filter((w) => w !== "");
      expect(splitWords(value), JSON.stringify(value)).toEqual(words.map((w) => ({ text: w, raw: w })));
    }
  });

  it("still reads quotes and escapes", () => {
    expect(splitWords(`a "b c" d\\x41`)).toEqual([
      { text: "a", raw: "a" },
      { text: "b c", raw: `"b c"` },
      { text: "dA", raw: "d\\x41" },
    ]);
    expect(() => splitWords(`'open`)).toThrow(/unterminated single quote/);
  });
});

describe("isValidGlob without an escape or a class", () => {
  it("calls every such pattern valid, and each matches as compiled", () => {
    const rnd = random(3);
    for (let i = 0; i < 5000; i++) {
      const p = pick(rnd, "ab*?-.]@", 1 + Math.floor(rnd() * 6));
      expect(isValidGlob(p), p).toBe(true);
      const name = pick(rnd, "ab-.]@", Math.floor(rnd() * 6));
      const re = new RegExp(`^${[...p].map((c) => (c === "*" ? "[^/]*" : c === "?" ? "[^/]" : c.replace(/[.\]]/g, "\\$&"))).join("")}$`);
      expect(globMatch(p, name), `${p} ${name}`).toBe(re.test(name));
    }
    expect(isValidGlob("")).toBe(false);
    expect(isValidGlob("a\\")).toBe(false);
    expect(isValidGlob("[a")).toBe(false);
    expect(isValidGlob("[a]*")).toBe(true);
  });
});
