// The systemd INI layer: turns a unit file's text into (section, key, value, line) entries, as
// systemd's config_parse() does, before any option is interpreted. Rules copied from systemd:
// '#' and ';' start a comment only at the start of a line (also inside a continuation, where
// the comment line is dropped); a trailing backslash joins the next line with a space; the
// same section may appear twice and merges; keys are case-sensitive.
import { FlotillaError, showValue } from "../protocol/errors.js";

/** Bigger than any real unit file; stops a pasted binary or log from filling the units bucket. */
export const MAX_UNIT_FILE_BYTES = 256 * 1024;

export interface IniEntry {
  section: string;
  key: string;
  value: string;
  /** 1-based line where the assignment starts (a continued value spans later lines too). */
  line: number;
}

export interface IniFile {
  entries: IniEntry[];
  /** Section name -> line of its first header, in order of appearance. */
  sections: Map<string, number>;
}

/**
 * A record without a prototype: keys come from user files, and "__proto__", "constructor" and
 * friends must be plain keys there, not inherited properties or a prototype switch.
 */
export function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** A content error pointing at one line: "line 7: ..." with `line` set for the API. */
export function lineError(line: number, message: string, field?: string, value?: unknown): FlotillaError {
  return new FlotillaError("invalid_unit_file", `line ${line}: ${message}`, { field, value, line });
}

function fileError(message: string, line?: number, value?: unknown): FlotillaError {
  return new FlotillaError("invalid_unit_file", line === undefined ? message : `line ${line}: ${message}`, {
    field: "contents",
    value,
    line,
  });
}

/**
 * Refuses what is plainly not a unit file: too big, NUL bytes, bytes that were not UTF-8
 * (decoded as U+FFFD) or other control characters. Names the first offending line.
 */
export function checkText(contents: string): void {
  const bytes = Buffer.byteLength(contents, "utf8");
  if (bytes > MAX_UNIT_FILE_BYTES) {
    throw fileError(
      `unit file is ${bytes} bytes; the limit is ${MAX_UNIT_FILE_BYTES} bytes (256 KiB)`,
      undefined,
      `${bytes} bytes`,
    );
  }
  // Tab, LF and CR are the only control characters a text unit file holds.
  const bad = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufffd]/.exec(contents);
  if (bad) {
    const line = lineAt(contents, bad.index);
    const ch = bad[0];
    const what =
      ch === "\u0000"
        ? "a NUL byte"
        : ch === "\ufffd"
          ? "bytes that are not valid UTF-8"
          : `control character 0x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
    throw fileError(`unit file contains ${what}; is it a binary file? A unit file is UTF-8 text`, line);
  }
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Parses unit file text into entries. Throws invalid_unit_file naming the line. */
export function readIni(contents: string): IniFile {
  checkText(contents);
  const text = contents.startsWith("\ufeff") ? contents.slice(1) : contents;
  const lines = text.split("\n");
  const st: Reading = { entries: [], sections: new Map<string, number>(), section: undefined };
  let continued: string | undefined; // text gathered so far of a continued line
  let startLine = 0;

  for (let i = 0; i < lines.length; i++) {
    let l = lines[i]!;
    if (l.endsWith("\r")) l = l.slice(0, -1);
    const lineNo = i + 1;
    const lead = l.trimStart();
    // Comments are dropped even in the middle of a continuation, as systemd does.
    if (lead.startsWith("#") || lead.startsWith(";")) continue;
    if (continued === undefined) {
      startLine = lineNo;
      // A continuation never starts from a section header.
      if (lead === "" || lead.startsWith("[")) {
        finishLine(st, l, lineNo);
        continue;
      }
    }
    const whole = continued === undefined ? l : continued + l;
    if (endsWithContinuation(whole)) {
      continued = whole.slice(0, -1) + " ";
      continue;
    }
    continued = undefined;
    finishLine(st, whole, startLine);
  }
  if (continued !== undefined) finishLine(st, continued, startLine);
  return { entries: st.entries, sections: st.sections };
}

/** What readIni has read so far: the entries, the sections, the section a line is in. */
interface Reading extends IniFile {
  section: string | undefined;
}

/**
 * One whole (joined) line into st: a section header, an assignment, or nothing. A function of
 * its own, not a closure per file: the engine reads the [X-Fleet] lines of 100,000 files.
 */
function finishLine(st: Reading, raw: string, line: number): void {
  const l = raw.trim();
  if (l === "") return;
  if (l.startsWith("[")) {
    if (!l.endsWith("]") || l.length < 3) {
      throw fileError(`invalid section header ${showValue(l)}: expected [Name]`, line, l);
    }
    const name = l.slice(1, -1);
    if (/[\[\]]/.test(name) || name.trim() !== name) {
      throw fileError(`invalid section name ${showValue(name)}`, line, name);
    }
    st.section = name;
    if (!st.sections.has(name)) st.sections.set(name, line);
    return;
  }
  const eq = l.indexOf("=");
  if (eq < 0) {
    throw fileError(`${showValue(l)} is not an assignment (expected Key=Value)`, line, l);
  }
  const key = l.slice(0, eq).trim();
  const value = l.slice(eq + 1).trim();
  if (key === "") throw fileError(`assignment without a key: ${showValue(l)}`, line, l);
  if (!/^[A-Za-z0-9_-]+$/.test(key)) {
    throw fileError(`invalid key ${showValue(key)}: keys are letters, digits, '-' and '_'`, line, key);
  }
  if (st.section === undefined) {
    throw fileError(`${key}= appears before any [Section] header`, line, key);
  }
  st.entries.push({ section: st.section, key, value, line });
}

/** A trailing backslash continues the line unless it is itself escaped ("\\" at the end). */
function endsWithContinuation(l: string): boolean {
  const t = l.trimEnd();
  if (t.length !== l.length) return false; // systemd: the backslash must be the last character
  let n = 0;
  for (let i = l.length - 1; i >= 0 && l[i] === "\\"; i--) n++;
  return n % 2 === 1;
}
