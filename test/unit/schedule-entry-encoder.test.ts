// The schedule writer encodes the 5 fields its entries share once per batch (EntryEncoder): the
// bytes must be exactly those of encoding the whole entry, for any unit name and machine ID.
import { describe, expect, it } from "vitest";
import { decode, encode } from "../../src/protocol/codec.js";
import { EntryEncoder } from "../../src/engine/schedule-writer.js";

const contents = "[Unit]\nDescription=héllo ☃\n\n[Service]\nExecStart=/bin/sleep 600\n";

describe("schedule entry encoding", () => {
  it("gives the bytes of the whole entry, sharing the common part across units", () => {
    const enc = new EntryEncoder(7, 1_795_000_000_123);
    const names = ["a.service", "hello@1.service", `${"n".repeat(40)}.service`, `${"x".repeat(300)}.service`, "ünïcode@☃.service"];
    const machines = ["m1", "0123456789abcdef0123456789abcdef", "m".repeat(70)];
    for (const desiredState of ["launched", "loaded"] as const) {
      for (const name of names) {
        for (const machineId of machines) {
          const u = { name, hash: "3f786850e387550fdab836ed7e6dc881de23001b", desiredState, contents };
          const whole = encode({ unit: name, machineId, hash: u.hash, desiredState, contents, epoch: 7, scheduledAt: 1_795_000_000_123 });
          const got = enc.encode(u, machineId);
          expect(Buffer.from(got).equals(Buffer.from(whole))).toBe(true);
          expect(decode(got)).toEqual({ unit: name, machineId, hash: u.hash, desiredState, contents, epoch: 7, scheduledAt: 1_795_000_000_123 });
        }
      }
    }
  });
  it("keeps different files apart", () => {
    const enc = new EntryEncoder(1, 1);
    const a = decode(enc.encode({ name: "a.service", hash: "aaaaaaa1", desiredState: "launched", contents: "A" }, "m1")) as { contents: string };
    const b = decode(enc.encode({ name: "b.service", hash: "bbbbbbb2", desiredState: "launched", contents: "B" }, "m1")) as { contents: string };
    const c = decode(enc.encode({ name: "c.service", hash: "aaaaaaa1", desiredState: "loaded", contents: "A" }, "m1")) as { desiredState: string };
    expect([a.contents, b.contents, c.desiredState]).toEqual(["A", "B", "loaded"]);
  });
});
