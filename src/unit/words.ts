// systemd's word splitting (extract_first_word with EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE), used
// for ExecStart= command lines, Environment= assignments and the space-separated [X-Fleet]
// lists. Words are separated by whitespace; single and double quotes group (and may sit in the
// middle of a word, as in a shell); C escapes (\n, \t, \\, \", \xHH, \NNN, \uXXXX) are decoded
// inside and outside quotes, both kinds. No variables, globs or pipes: there is no shell.
import { showValue } from "../protocol/errors.js";

export interface Word {
  text: string;
  /** The word exactly as written (quotes and escapes kept), to recognise a bare ";". */
  raw: string;
}

export class WordError extends Error {}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: "\u0007",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  s: " ",
  "\\": "\\",
  '"': '"',
  "'": "'",
  ";": ";",
  " ": " ",
  $: "$",
};

/** Decodes the escape that starts at s[i] === "\\"; returns the text and the index after it. */
function unescapeAt(s: string, i: number): [string, number] {
  const c = s[i + 1];
  if (c === undefined) throw new WordError("a backslash ends the value with nothing to escape");
  const simple = SIMPLE_ESCAPES[c];
  if (simple !== undefined) return [simple, i + 2];
  if (c === "x") {
    const hex = /^[0-9a-fA-F]{2}/.exec(s.slice(i + 2));
    if (!hex) throw new WordError(`bad escape "\\x${s.slice(i + 2, i + 4)}": \\x needs two hex digits`);
    const code = parseInt(hex[0], 16);
    if (code === 0) throw new WordError("the escape \\x00 (a NUL byte) is not allowed");
    return [String.fromCharCode(code), i + 4];
  }
  if (c === "u" || c === "U") {
    const n = c === "u" ? 4 : 8;
    const hex = new RegExp(`^[0-9a-fA-F]{${n}}`).exec(s.slice(i + 2));
    const code = hex ? parseInt(hex[0], 16) : -1;
    if (!hex || code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      throw new WordError(`bad escape "\\${c}${s.slice(i + 2, i + 2 + n)}": \\${c} needs ${n} hex digits of a character`);
    }
    return [String.fromCodePoint(code), i + 2 + n];
  }
  if (c >= "0" && c <= "7") {
    const oct = /^[0-7]{3}/.exec(s.slice(i + 1));
    const code = oct ? parseInt(oct[0], 8) : -1;
    if (!oct || code === 0 || code > 0xff) throw new WordError(`bad escape "\\${s.slice(i + 1, i + 4)}": octal escapes take three digits`);
    return [String.fromCharCode(code), i + 4];
  }
  throw new WordError(`unknown escape "\\${c}" (write "\\\\" for a backslash)`);
}

/** What makes a word's text differ from its raw form: quotes and escapes. */
const NEEDS_READING = /[\\'"]/;

/** The words of a value without quotes or escapes (isSpace separates them). */
function plainWords(value: string): Word[] {
  const words: Word[] = [];
  const n = value.length;
  let i = 0;
  while (i < n) {
    while (i < n && isSpace(value[i])) i++;
    if (i >= n) break;
    const start = i;
    while (i < n && !isSpace(value[i])) i++;
    const text = value.slice(start, i);
    words.push({ text, raw: text });
  }
  return words;
}

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r";
}

/** Splits a value into words. Throws WordError on an unterminated quote or a bad escape. */
export function splitWords(value: string): Word[] {
  // Without quotes or escapes a word is its text as written: split at whitespace (the
  // [X-Fleet] lists of 100,000 units go this way, not a character at a time).
  if (!NEEDS_READING.test(value)) return plainWords(value);
  const words: Word[] = [];
  let i = 0;
  const n = value.length;
  while (i < n) {
    while (i < n && isSpace(value[i])) i++;
    if (i >= n) break;
    const start = i;
    let text = "";
    while (i < n && !isSpace(value[i])) {
      const c = value[i]!;
      if (c === "\\") {
        const [t, next] = unescapeAt(value, i);
        text += t;
        i = next;
      } else if (c === "'" || c === '"') {
        // systemd decodes escapes inside both kinds of quotes (unlike a shell's '...').
        i++;
        let closed = false;
        while (i < n) {
          const d = value[i]!;
          if (d === c) {
            closed = true;
            i++;
            break;
          }
          if (d === "\\") {
            const [t, next] = unescapeAt(value, i);
            text += t;
            i = next;
          } else {
            text += d;
            i++;
          }
        }
        if (!closed) {
          const kind = c === "'" ? "single" : "double";
          throw new WordError(`unterminated ${kind} quote in ${showValue(value.slice(start))}`);
        }
      } else {
        text += c;
        i++;
      }
    }
    words.push({ text, raw: value.slice(start, i) });
  }
  return words;
}
