// systemd's environment rules for whoever starts a unit's commands (the executor): the syntax
// of an EnvironmentFile= and the $VAR / ${VAR} substitution in ExecStart= arguments. Pure: the
// caller reads the file. Substitution follows systemd.service(5): "${FOO}" is replaced inside
// any word; "$FOO" standing alone as a word becomes the value split at whitespace (zero or more
// words); "$FOO" inside a longer word and anything else stays as written; "$$" is "$".
import { dict } from "./ini.js";
import type { ExecCommand } from "./types.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface EnvFileResult {
  env: Record<string, string>;
  /** Lines systemd would skip with a warning (no '=' or a bad name), 1-based. */
  skipped: { line: number; text: string }[];
}

/**
 * Parses an EnvironmentFile= the way systemd does: KEY=VALUE lines; '#' and ';' comments at
 * the start of a line; values in single quotes are literal; in double quotes '\' escapes
 * '"', '\', '`', '$' and a newline; unquoted, '\' escapes the next character and a trailing
 * '\' continues the line; unquoted values lose surrounding whitespace.
 */
export function parseEnvironmentFile(text: string): EnvFileResult {
  const env = dict<string>();
  const skipped: { line: number; text: string }[] = [];
  const s = text.startsWith("\ufeff") ? text.slice(1) : text;
  let i = 0;
  let line = 1;
  const n = s.length;
  while (i < n) {
    // Start of a line: skip blanks, comments.
    while (i < n && (s[i] === " " || s[i] === "\t" || s[i] === "\r")) i++;
    if (i >= n) break;
    if (s[i] === "\n") {
      i++;
      line++;
      continue;
    }
    const startLine = line;
    if (s[i] === "#" || s[i] === ";") {
      while (i < n && s[i] !== "\n") i++;
      continue;
    }
    let key = "";
    while (i < n && s[i] !== "=" && s[i] !== "\n") key += s[i++];
    if (i >= n || s[i] === "\n") {
      skipped.push({ line: startLine, text: key.trim() });
      continue;
    }
    i++; // '='
    key = key.trim();
    while (i < n && (s[i] === " " || s[i] === "\t")) i++;
    let value = "";
    let pendingSpace = ""; // unquoted trailing whitespace is dropped, inner whitespace kept
    for (;;) {
      if (i >= n) break;
      const c = s[i]!;
      if (c === "\n") break;
      if (c === "\r" && (s[i + 1] === "\n" || i + 1 >= n)) {
        i++;
        continue;
      }
      if (c === "'") {
        value += pendingSpace;
        pendingSpace = "";
        i++;
        while (i < n && s[i] !== "'") {
          if (s[i] === "\n") line++;
          value += s[i++];
        }
        i++;
      } else if (c === '"') {
        value += pendingSpace;
        pendingSpace = "";
        i++;
        while (i < n && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < n && '"\\`$\n'.includes(s[i + 1]!)) {
            if (s[i + 1] === "\n") line++;
            else value += s[i + 1];
            i += 2;
          } else {
            if (s[i] === "\n") line++;
            value += s[i++];
          }
        }
        i++;
      } else if (c === "\\") {
        const d = s[i + 1];
        i += 2;
        if (d === "\n") {
          line++;
          continue; // continuation
        }
        if (d === "\r" && s[i] === "\n") {
          i++;
          line++;
          continue;
        }
        value += pendingSpace + (d ?? "");
        pendingSpace = "";
      } else if (c === " " || c === "\t") {
        pendingSpace += c;
        i++;
      } else {
        value += pendingSpace + c;
        pendingSpace = "";
        i++;
      }
    }
    if (NAME.test(key)) env[key] = value;
    else skipped.push({ line: startLine, text: key });
  }
  return { env, skipped };
}

function own(rec: Record<string, string>, key: string): string | undefined {
  return Object.hasOwn(rec, key) ? rec[key] : undefined;
}

function replaceBraced(word: string, env: Record<string, string>): string {
  return word.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string | undefined) =>
    name === undefined ? "$" : (own(env, name) ?? ""),
  );
}

/**
 * The argv systemd would execute for `cmd` with environment `env`: argv[0] (the executable)
 * is taken as written; the ':' prefix (noEnvExpansion) turns substitution off.
 */
export function expandExecArgv(cmd: Pick<ExecCommand, "argv" | "noEnvExpansion">, env: Record<string, string>): string[] {
  if (cmd.noEnvExpansion) return [...cmd.argv];
  const out: string[] = [cmd.argv[0]!];
  for (const word of cmd.argv.slice(1)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (whole) {
      const v = own(env, whole[1]!);
      if (v !== undefined) out.push(...v.split(/[ \t\n\r]+/).filter((w) => w !== ""));
      continue;
    }
    out.push(replaceBraced(word, env));
  }
  return out;
}
