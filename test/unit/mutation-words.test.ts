// Kills StrykerJS survivors in src/unit/words.ts (docs/mutation.md): every escape systemd
// decodes, the bounds of the \x, \u, \U and octal escapes, and the raw text of each word.
import { describe, expect, it } from "vitest";
import { splitWords, WordError } from "../../src/unit/words.js";

const texts = (v: string) => splitWords(v).map((w) => w.text);

function wordError(v: string): WordError {
  try {
    splitWords(v);
  } catch (e) {
    expect(e).toBeInstanceOf(WordError);
    return e as WordError;
  }
  throw new Error(`expected a WordError for ${JSON.stringify(v)}`);
}

describe("splitWords escapes", () => {
  it.each([
    ["\\a", "\u0007"],
    ["\\b", "\b"],
    ["\\f", "\f"],
    ["\\n", "\n"],
    ["\\r", "\r"],
    ["\\t", "\t"],
    ["\\v", "\v"],
    ["\\s", " "],
    ["\\\\", "\\"],
    ['\\"', '"'],
    ["\\'", "'"],
    ["\\;", ";"],
    ["\\ ", " "],
    ["\\$", "$"],
  ])("decodes %s outside and inside both quotes", (esc, want) => {
    expect(texts(`x${esc}y`)).toEqual([`x${want}y`]);
    expect(texts(`"x${esc}y"`)).toEqual([`x${want}y`]);
    expect(texts(`'x${esc}y'`)).toEqual([`x${want}y`]);
  });

  it("decodes \\xHH with either case of hex digit and goes on after the two digits", () => {
    expect(texts("\\x41\\x7a\\x7A1")).toEqual(["Azz1"]);
    expect(texts("\\x4a2")).toEqual(["J2"]);
  });

  it("decodes \\u (4 digits) and \\U (8 digits), and reads no more digits than that", () => {
    expect(texts("\\u00e9a")).toEqual(["éa"]);
    expect(texts("\\u00E91")).toEqual(["é1"]);
    expect(texts("\\U0001F600x")).toEqual(["😀x"]);
    expect(texts("\\U0010ffff")).toEqual([String.fromCodePoint(0x10ffff)]);
    expect(texts("\\ud7ff")).toEqual(["\ud7ff"]);
    expect(texts("\\ue000")).toEqual(["\ue000"]);
  });

  it.each([
    ["\\u12", '"\\u12": \\u needs 4 hex digits'],
    ["\\u0000", '"\\u0000": \\u needs 4 hex digits'],
    ["\\ud800", '"\\ud800"'],
    ["\\udfff", '"\\udfff"'],
    ["\\U00110000", '"\\U00110000": \\U needs 8 hex digits'],
    ["\\U0001F60", '"\\U0001F60": \\U needs 8 hex digits'],
  ])("refuses %s", (v, msg) => {
    expect(wordError(v).message).toContain(`bad escape ${msg}`);
  });

  it("decodes three-digit octal up to \\377 and refuses \\400, \\000 and short ones", () => {
    expect(texts("\\1011")).toEqual(["A1"]);
    expect(texts("\\377")).toEqual(["\u00ff"]);
    expect(texts("\\0101")).toEqual(["\u00081"]);
    expect(wordError("\\400").message).toBe('bad escape "\\400": octal escapes take three digits');
    expect(wordError("\\000").message).toBe('bad escape "\\000": octal escapes take three digits');
    expect(wordError("\\7x").message).toBe('bad escape "\\7x": octal escapes take three digits');
    expect(wordError("\\8").message).toBe('unknown escape "\\8" (write "\\\\" for a backslash)');
  });

  it("a character below '0' after a backslash is an unknown escape, not an octal one", () => {
    expect(wordError("\\!").message).toBe('unknown escape "\\!" (write "\\\\" for a backslash)');
    expect(wordError("\\(").message).toMatch(/^unknown escape/);
  });

  it("reads the three octal digits right after the backslash, not three found later", () => {
    expect(wordError("\\1x234").message).toBe('bad escape "\\1x2": octal escapes take three digits');
  });

  it("refuses a value ending in a backslash, inside or outside quotes", () => {
    expect(wordError("a\\").message).toBe("a backslash ends the value with nothing to escape");
    expect(wordError('"a\\').message).toBe("a backslash ends the value with nothing to escape");
  });

  it("names the bad \\x escape with at most two characters", () => {
    expect(wordError("\\xg12").message).toBe('bad escape "\\xg1": \\x needs two hex digits');
  });
});

describe("splitWords words", () => {
  it("splits on space, tab, newline and CR only", () => {
    expect(texts(" a\tb\nc\rd  ")).toEqual(["a", "b", "c", "d"]);
    expect(texts("a\u00a0b\vc")).toEqual(["a\u00a0b\vc"]);
    expect(splitWords("   ")).toEqual([]);
    expect(splitWords("")).toEqual([]);
  });

  it("keeps each word's raw text, quotes and escapes included", () => {
    expect(splitWords(`  a"b c"d 'e' \\x41 ;`)).toEqual([
      { text: "ab cd", raw: `a"b c"d` },
      { text: "e", raw: `'e'` },
      { text: "A", raw: "\\x41" },
      { text: ";", raw: ";" },
    ]);
  });

  it("a quote of the other kind inside quotes is plain text", () => {
    expect(texts(`"a'b" 'c"d'`)).toEqual(["a'b", 'c"d']);
  });

  it("names the kind of an unterminated quote and quotes the rest of the value from the word", () => {
    expect(wordError(`a 'b c`).message).toBe(`unterminated single quote in "'b c"`);
    expect(wordError(`a x"b c`).message).toBe(`unterminated double quote in "x\\"b c"`);
  });
});
