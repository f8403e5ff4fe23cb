// KEY=value lines, as in the .env files of flotilla auth (NATS_USER=, NATS_PASSWORD=) and what
// `set -a; . FILE` reads: blank lines and # comments skipped, no quoting or expansion.
export function parseEnvText(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const eq = line.indexOf("=");
    if (eq > 0 && !line.trimStart().startsWith("#")) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}
