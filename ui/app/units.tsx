// Units × machines: each unit's task state on each machine; for an unplaced unit, why, per
// machine; start, stop and destroy.
import { Fragment } from "preact";
import { unplacedOf } from "../lib/unplaced.js";
import { api } from "./client.js";
import { Chip, confirmAction, shortId } from "./kit.js";
import { config, machines, nc, refresh, statuses, unitFiles, unitRows } from "./store.js";

function act(verb: "start" | "stop" | "destroy", unit: string) {
  const detail = {
    start: "The cluster places it (if needed) and runs it.",
    stop: "Its task is stopped; the unit stays loaded on its machine.",
    destroy: "The unit is stopped and removed from the cluster.",
  }[verb];
  confirmAction(`${verb[0]!.toUpperCase()}${verb.slice(1)} ${unit}?`, detail, verb, async () => {
    if (!nc.current || !config.value) throw new Error("not connected");
    await api(nc.current, config.value.prefix, verb, { units: [{ name: unit }] });
    await refresh();
  });
}

export function UnitsView() {
  const ms = machines.value;
  const cells = new Map<string, (typeof unitRows.value)[number]>();
  for (const r of unitRows.value) cells.set(`${r.unit}\u0000${r.machine}`, r);
  const files = unitFiles.value;
  const names = [...new Set([...files.map((f) => f.unit), ...unitRows.value.map((r) => r.unit)])].sort();
  const fileOf = new Map(files.map((f) => [f.unit, f]));
  if (names.length === 0) return <div class="view muted">No units in the cluster. Submit one with `flotilla start FILE`.</div>;
  return (
    <div class="view">
      <table class="grid units" data-testid="units">
        <thead>
          <tr>
            <th>Unit</th>
            <th>Desired</th>
            <th>State</th>
            {ms.map((m) => (
              <th key={m.id} class="mono" title={m.id}>
                {shortId(m.id)}
                {m.hostname ? <div class="muted small">{m.hostname}</div> : null}
              </th>
            ))}
            <th />
          </tr>
        </thead>
        <tbody>
          {names.map((name) => {
            const f = fileOf.get(name);
            const why = f?.unplaced ? unplacedOf(statuses.value.get(name) ?? { unplaced: f.unplaced }) : null;
            const perMachine = new Map((why?.machines ?? []).map((r) => [r.machineId, r.reason]));
            return (
              <Fragment key={name}>
                <tr data-unit={name}>
                  <td class="mono">
                    {name}
                    {f?.global && <span class="chip plain small">global</span>}
                    {f?.description && <div class="muted small">{f.description}</div>}
                  </td>
                  <td>{f ? <Chip s={f.desiredState} /> : "—"}</td>
                  <td>{f ? <Chip s={f.currentState} /> : "—"}</td>
                  {ms.map((m) => {
                    const c = cells.get(`${name}\u0000${m.id}`);
                    const reason = perMachine.get(m.id);
                    return (
                      <td key={m.id} data-cell={`${name}@${m.id}`}>
                        {c ? (
                          <a href={`#/actor/${encodeURIComponent(`${m.id}/task:${name}`)}`} title={`${c.load}/${c.active}/${c.sub}${c.error ? ` — ${c.error}` : ""}`}>
                            <Chip s={c.taskState} />
                          </a>
                        ) : reason ? (
                          <span class="refusal" data-refusal={m.id}>
                            {reason}
                          </span>
                        ) : (
                          <span class="muted">·</span>
                        )}
                      </td>
                    );
                  })}
                  <td class="actions">
                    <button onClick={() => act("start", name)}>Start</button>
                    <button onClick={() => act("stop", name)}>Stop</button>
                    <button onClick={() => act("destroy", name)}>Destroy</button>
                    <a class="button" href={`#/journal/${encodeURIComponent(name)}`}>
                      Journal
                    </a>
                  </td>
                </tr>
                {why && (
                  <tr class="why" data-unplaced={name}>
                    <td colSpan={4 + ms.length}>
                      <strong>Not placed:</strong> {why.summary ?? "the leader engine has not said why yet"}
                      {why.groups.length > 0 ? (
                        <ul class="plain-list why-list">
                          {why.groups.map((g) => (
                            <li key={g.why}>
                              {g.why}: <span class="mono">{g.machines.map(shortId).join(", ")}</span>
                              {g.count > g.machines.length && <span class="muted"> and {g.count - g.machines.length} more</span>}
                            </li>
                          ))}
                        </ul>
                      ) : (
                        why.machines.length > 0 && (
                          <ul class="plain-list why-list">
                            {why.machines.map((r) => (
                              <li key={r.machineId}>
                                <span class="mono">{shortId(r.machineId)}</span> {r.reason}
                              </li>
                            ))}
                          </ul>
                        )
                      )}
                    </td>
                  </tr>
                )}
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
