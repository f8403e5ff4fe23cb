// Cluster: the machines, the engine's leader and its lease history, units by state.
import { leaseHistory } from "../lib/history.js";
import { api } from "./client.js";
import { age, bytes, Chip, clock, confirmAction, shortId } from "./kit.js";
import { capacityUsed, config, historyVersion, history, leaderAndCounts, machines, nc, now, refresh, unitRows, type MachineRecord } from "./store.js";

function setAvailability(m: MachineRecord, availability: "drain" | "pause" | "active") {
  const what = { drain: "Drain", pause: "Pause", active: "Activate" }[availability];
  const detail = {
    drain: "Its units move to other machines and it takes no new ones.",
    pause: "It keeps its units but takes no new ones.",
    active: "It takes units again.",
  }[availability];
  confirmAction(`${what} machine ${shortId(m.id)}${m.hostname ? ` (${m.hostname})` : ""}?`, detail, "machine-availability", async () => {
    if (!nc.current || !config.value) throw new Error("not connected");
    await api(nc.current, config.value.prefix, "machine-availability", { machine: m.id, availability });
    await refresh();
  });
}

export function ClusterView() {
  void historyVersion.value;
  const t = now.value;
  const lease = leaseHistory(history);
  const { byTask, byDesired, unplaced } = leaderAndCounts.value;
  const used = capacityUsed.value;
  const perMachine = new Map<string, number>();
  for (const r of unitRows.value) perMachine.set(r.machine, (perMachine.get(r.machine) ?? 0) + 1);
  return (
    <div class="view">
      <section>
        <h2>Machines</h2>
        {machines.value.length === 0 ? (
          <p class="muted">No machine has a record in the machines bucket.</p>
        ) : (
          <table class="grid" data-testid="machines">
            <thead>
              <tr>
                <th>Machine</th>
                <th>Host</th>
                <th>IP</th>
                <th>Metadata</th>
                <th>Availability</th>
                <th>Reserved / capacity</th>
                <th>Tasks</th>
                <th>Heartbeat</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {machines.value.map((m) => {
                const beat = t - m.heartbeatAt;
                return (
                  <tr key={m.id} data-machine={m.id}>
                    <td class="mono" title={m.id}>
                      {shortId(m.id)}
                      {lease.leader === m.id && (
                        <span class="chip good small" title="holds the engine-leader lease">
                          leader
                        </span>
                      )}
                    </td>
                    <td>{m.hostname}</td>
                    <td class="mono">{m.publicIp || "—"}</td>
                    <td>
                      {Object.entries(m.metadata).map(([k, v]) => (
                        <span class="chip plain small" key={k}>
                          {k}={v}
                        </span>
                      ))}
                    </td>
                    <td>
                      <Chip s={m.availability} />
                    </td>
                    <td class="mono" data-capacity title="reserved (CPU= and Memory= of the units scheduled here) / total">
                      {+(used.get(m.id)?.cpu ?? 0).toFixed(2)} / {m.capacity.cpu} cpu · {bytes(used.get(m.id)?.memory ?? 0)} / {bytes(m.capacity.memory)}
                    </td>
                    <td class="num">{perMachine.get(m.id) ?? 0}</td>
                    <td class={`mono ${beat > 10_000 ? "late" : ""}`} title={new Date(m.heartbeatAt).toISOString()}>
                      {age(beat)} ago
                    </td>
                    <td class="actions">
                      {m.availability !== "drain" && <button onClick={() => setAvailability(m, "drain")}>Drain</button>}
                      {m.availability !== "pause" && <button onClick={() => setAvailability(m, "pause")}>Pause</button>}
                      {m.availability !== "active" && <button onClick={() => setAvailability(m, "active")}>Activate</button>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </section>
      <div class="two">
        <section>
          <h2>Engine</h2>
          <p data-testid="leader">
            {lease.leader ? (
              <>
                Leader: <span class="mono">{shortId(lease.leader)}</span>
                {lease.epoch !== undefined && <span class="muted"> · epoch {lease.epoch}</span>}
              </>
            ) : (
              <span class="muted">No lease actor is leading now (or none has been seen yet).</span>
            )}
          </p>
          <h3>Lease history</h3>
          {lease.changes.length === 0 ? (
            <p class="muted">Nothing in the inspect stream yet.</p>
          ) : (
            <ul class="plain-list">
              {lease.changes
                .slice(-8)
                .reverse()
                .map((c) => (
                  <li key={`${c.at}-${c.machineId}-${c.what}`}>
                    <span class="mono muted">{clock(c.at)}</span> <span class="mono">{shortId(c.machineId)}</span> {c.what}
                    {c.epoch !== undefined ? ` (epoch ${c.epoch})` : ""}
                  </li>
                ))}
            </ul>
          )}
        </section>
        <section>
          <h2>Units</h2>
          <p>
            {[...byDesired].map(([s, n]) => (
              <span key={s} class="count">
                <Chip s={s} /> {n}
              </span>
            ))}
            {byDesired.size === 0 && <span class="muted">No units submitted.</span>}
          </p>
          <h3>Tasks by state</h3>
          <p data-testid="task-counts">
            {[...byTask].map(([s, n]) => (
              <span key={s} class="count">
                <Chip s={s} /> {n}
              </span>
            ))}
            {byTask.size === 0 && <span class="muted">No task reports a state.</span>}
          </p>
          {unplaced > 0 && (
            <p class="warn">
              {unplaced} unit{unplaced > 1 ? "s" : ""} not placed: <a href="#/units">see why</a>
            </p>
          )}
        </section>
      </div>
    </div>
  );
}
