// fleetOptionsCached (what the engine reads of each unit) against the whole parse: the same
// options or the same error, for every file and name, whichever way the cache read the file
// (whole, only its [X-Fleet] lines after a known rest, from the per-contents cache).
import { describe, expect, it } from "vitest";
import { clearUnitCache, fleetOptionsCached, fleetReads, MAX_UNIT_FILE_BYTES, parseUnitFile } from "../../src/unit/index.js";

const BASE = "[Unit]\nDescription=bench\n\n[Service]\nExecStart=/bin/sleep 600\n";
const big = (n: number) => "x".repeat(n);

/** Everything before "[X-Fleet]\n": valid, broken in many ways, and shaped to fool a text split. */
const RESTS = [
  BASE,
  BASE.replaceAll("\n", "\r\n"),
  "\ufeff" + BASE,
  // The header line is appended to this continued value: the file has no [X-Fleet] section.
  "[Service]\nExecStart=/bin/sleep 600 \\\n",
  // A comment inside a continuation keeps it open.
  "[Service]\nExecStart=/bin/sleep \\\n# note\n",
  "[Service]\nExecStart=/bin/sleep 600\nRestart=bogus\n",
  "[Unit]\nDescription=no command\n",
  "[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n",
  "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n",
  "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineOf=peer.service\n",
  "[Service]\nExecStart=/bin/true\nnot an assignment\n",
  "[Service]\nExecStart=/bin/true\n\n",
  "",
  // Near the size limit: a short tail fits, a long one does not.
  `[Unit]\nDescription=${big(MAX_UNIT_FILE_BYTES - 200)}\n[Service]\nExecStart=/bin/true\n`,
];

/** "[X-Fleet]\n" and what follows: good and bad options, other sections after, syntax errors. */
const TAILS = [
  "[X-Fleet]\nConflicts=g1-*\n",
  "[X-Fleet]\nConflicts=g2-*\nMachineMetadata=region=r1\nMachineMetadata=disk=ssd\n",
  "[X-Fleet]\nMachineMetadata=region=r1 region=r2\nCPU=0.25\nMemory=64M\n",
  "[X-Fleet]\nMachineOf=peer.service\n",
  "[X-Fleet]\nMachineOf=a.service\n",
  "[X-Fleet]\nMachineID=abc123\n",
  "[X-Fleet]\nGlobal=true\n",
  "[X-Fleet]\nGlobal=true\nConflicts=x*\n",
  "[X-Fleet]\nReplaces=old.service\n",
  "[X-Fleet]\nX-Conflicts=old-*\n",
  "[X-Fleet]\nConflicts=\n",
  "[X-Fleet]\nConflicts=a*\nConflicts=\nConflicts=b*\n",
  "[X-Fleet]\nCPU=-1\n",
  "[X-Fleet]\nConflicts=[\n",
  "[X-Fleet]\nMachineID=abc\nMachineOf=peer.service\n",
  "[X-Fleet]\ngarbage\n",
  "[X-Fleet]\nConflicts=a\u0001*\n",
  "[X-Fleet]\nConflicts=a*\n[Service]\nExecStart=/bin/other\n",
  "[X-Fleet]\nConflicts=a*\n[Service]\nExecStart=\n",
  "[X-Fleet]\nConflicts=a* \\\n",
  "[X-Fleet]\nConflicts=a* \\\nb*\n",
  "[X-Fleet]\nMachineMetadata=nokey\n",
  `[X-Fleet]\nConflicts=${big(400)}*\n`,
  "[X-Fleet]\r\nConflicts=crlf-*\r\n",
  "[X-Fleet]\nFoo=unknown\n",
  // Shapes the plain-tail reader takes or leaves to readIni.
  "[X-Fleet]\n  Conflicts = sp-*  \n\n   \nMachineMetadata= region=r2 \n",
  "[X-Fleet]\n# a comment\nConflicts=c-*\n; another\n",
  "[X-Fleet]\n  # indented comment\nConflicts=c-*\n",
  "[X-Fleet]\nConflicts=\ttab-*\n",
  "[X-Fleet]\n\tConflicts=tab-*\n",
  "[X-Fleet]\nConflicts=\"q a*\" b*\n",
  "[X-Fleet]\nConflicts=es\\x41*\n",
  "[X-Fleet]\nMachineMetadata=région=é\n",
  "[X-Fleet]\nCon flicts=x*\n",
  "[X-Fleet]\n=novalue\n",
  "[X-Fleet]\nConflicts\n",
  "[X-Fleet]\n[X-Fleet]\nConflicts=twice-*\n",
  "[X-Fleet]\n[Other]\nKey=v\n",
  "[X-Fleet] \nConflicts=h-*\n",
  "[X-Fleet]\nConflicts=a* b* a*\nMachineOf=peer.service peer.service\n",
  "[X-Fleet]\nX-ConditionMachineOf=peer.service\nCPU=2\nMemory=1G\n",
  "[X-Fleet]\nConflicts=x*",
  "[X-Fleet]\n; Conflicts=commented-*\n# MachineOf=commented.service\n",
  "[X-Fleet]\nConflicts=del\u007f*\n",
  // 128 characters, 228 bytes: over the limit after the longest rest by bytes, not by characters.
  `[X-Fleet]\nMachineMetadata=k=${"é".repeat(100)}\n`,
];

const NAMES = ["a.service", "b", "peer", "x@1.service", "x@.service", "peer.service", "a.socket", "bad name", "../x.service", "ab.service", ".ab.service", "@ab.service", "a..service"];

function whole(name: string, contents: string): { fleet?: unknown; error?: string } {
  try {
    return { fleet: parseUnitFile(name, contents).fleet };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function cached(name: string, contents: string): { fleet?: unknown; error?: string } {
  try {
    return { fleet: fleetOptionsCached(name, contents) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Deterministic shuffle (mulberry32). */
function shuffled<T>(items: T[], seed: number): T[] {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("fleetOptionsCached", () => {
  const files = RESTS.flatMap((r) => TAILS.map((t) => r + t));
  const cases = files.flatMap((contents) => NAMES.map((name) => ({ name, contents })));

  it("gives what the whole parse gives, for every file and name, in any order", () => {
    let fleetOnly = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      clearUnitCache();
      const before = fleetReads.fleetOnly;
      for (const { name, contents } of shuffled(cases, seed)) {
        expect(cached(name, contents), `${JSON.stringify(name)} ${JSON.stringify(contents.slice(0, 120))}`).toEqual(whole(name, contents));
      }
      fleetOnly += fleetReads.fleetOnly - before;
    }
    // The cases went through the fast read too, not only through the whole parse.
    expect(fleetOnly).toBeGreaterThan(250);
  });

  it("reads only the [X-Fleet] lines of a file whose rest passed before", () => {
    clearUnitCache();
    expect(fleetOptionsCached("g-0.service", BASE + "[X-Fleet]\nConflicts=g-*\n").conflicts).toEqual(["g-*"]);
    const { whole: w0, fleetOnly: f0 } = fleetReads;
    for (let i = 1; i <= 100; i++) {
      const f = fleetOptionsCached(`g-${i}.service`, `${BASE}[X-Fleet]\nConflicts=g${i}-*\nMachineMetadata=region=r${i % 3}\n`);
      expect(f.conflicts).toEqual([`g${i}-*`]);
      expect(f.machineMetadata).toEqual({ region: [`r${i % 3}`] });
    }
    expect(fleetReads.whole - w0).toBe(0);
    expect(fleetReads.fleetOnly - f0).toBe(100);
  });

  it("keeps the options frozen, with one empty list and one record per distinct requirement", () => {
    clearUnitCache();
    const a = fleetOptionsCached("a.service", `${BASE}[X-Fleet]\nMachineMetadata=region=r1\n`);
    const b = fleetOptionsCached("b.service", `${BASE}[X-Fleet]\nMachineMetadata=region=r1\nCPU=1\n`);
    expect(Object.isFrozen(a) && Object.isFrozen(a.machineMetadata) && Object.isFrozen(a.conflicts)).toBe(true);
    expect(Object.isFrozen(a.machineMetadata.region)).toBe(true);
    expect(a.machineMetadata).toBe(b.machineMetadata);
    expect(a.conflicts).toBe(b.machineOf);
    expect(Object.getPrototypeOf(a.machineMetadata)).toBeNull();
    expect(() => (a.conflicts as string[]).push("x")).toThrow();
  });
});
