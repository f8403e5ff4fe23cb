// The agent's local store of assigned tasks (SwarmKit's worker + tasks.db, in LMDB).
//
//   <state-dir>/worker/            one LMDB environment, values msgpack (lmdb's default)
//   ├─ db "task"     <unit> → StoredTask   { entry: ScheduleEntry, target, assigned }
//   ├─ db "status"   <unit> → TaskStatus   { taskState, hash, pid, exitCode, signal, restarts,
//   │                                        since, error }   written BEFORE it is reported
//   ├─ db "run"      <unit> → RunInfo      { supervisorPid, startTime, mainPid, startedAt }
//   │                                        the live workload, for adoption after a restart
//   └─ db "journal"  <unit> → JournalPosition { offset, epoch }: bytes of the task's log the
//                                        journal stream has acknowledged, and the id of that
//                                        file's current life (its Nats-Msg-Ids carry it); a
//                                        plain number (offset only) from older versions reads too
//
// `assigned` goes false the moment the agent decides to unload a task, before it stops it, so
// an agent that dies mid-unload finishes the job at its next start (Init). The environment is
// opened with noSync: a record survives the agent process dying (it is in the page cache the
// moment the write commits), which is the failure this store exists for; a whole-host crash
// also kills the workloads, and then the schedule is the truth again.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { open, type Database, type RootDatabase } from "lmdb";
import type { DesiredState, ScheduleEntry, TaskState } from "../protocol/messages.js";
import type { RunInfo } from "../exec/executor.js";

export interface StoredTask {
  entry: ScheduleEntry;
  /** What the agent drives the task towards: loaded (ready) or launched (running). */
  target: Exclude<DesiredState, "inactive">;
  assigned: boolean;
}

export interface TaskStatus {
  taskState: TaskState;
  hash: string;
  pid?: number;
  exitCode?: number;
  signal?: string;
  restarts: number;
  since: number;
  error?: string;
}

export interface JournalPosition {
  offset: number;
  epoch?: number;
}

export interface ResumedTask extends StoredTask {
  status?: TaskStatus;
  run?: RunInfo;
  journalOffset?: number;
  journalEpoch?: number;
}

function position(v: JournalPosition | number | undefined): JournalPosition | undefined {
  if (v === undefined) return undefined;
  return typeof v === "number" ? { offset: v } : v;
}

export class WorkerStore {
  private root?: RootDatabase;
  private tasks!: Database<StoredTask, string>;
  private statuses!: Database<TaskStatus, string>;
  private runs!: Database<RunInfo, string>;
  private journal!: Database<JournalPosition | number, string>;

  constructor(private readonly stateDir: string) {}

  get path(): string {
    return join(this.stateDir, "worker");
  }

  open(): void {
    if (this.root) return;
    mkdirSync(this.path, { recursive: true });
    this.root = open({ path: this.path, noSync: true, maxDbs: 8 });
    this.tasks = this.root.openDB<StoredTask, string>({ name: "task" });
    this.statuses = this.root.openDB<TaskStatus, string>({ name: "status" });
    this.runs = this.root.openDB<RunInfo, string>({ name: "run" });
    this.journal = this.root.openDB<JournalPosition | number, string>({ name: "journal" });
  }

  async close(): Promise<void> {
    const r = this.root;
    this.root = undefined;
    if (r) await r.close();
  }

  /**
   * SwarmKit's Init: tasks no longer assigned are deleted (returned in `dropped` so the agent
   * can kill what they left running); the others come back with their last status and run.
   */
  async init(): Promise<{ resume: ResumedTask[]; dropped: ResumedTask[] }> {
    this.open();
    const resume: ResumedTask[] = [];
    const dropped: ResumedTask[] = [];
    for (const { key, value } of this.tasks.getRange()) {
      const pos = position(this.journal.get(key));
      const t: ResumedTask = {
        ...value,
        status: this.statuses.get(key),
        run: this.runs.get(key),
        journalOffset: pos?.offset,
        journalEpoch: pos?.epoch,
      };
      (value.assigned ? resume : dropped).push(t);
    }
    for (const t of dropped) await this.delete(t.entry.unit);
    return { resume, dropped };
  }

  get(unit: string): ResumedTask | undefined {
    const t = this.tasks.get(unit);
    if (!t) return undefined;
    const pos = position(this.journal.get(unit));
    return { ...t, status: this.statuses.get(unit), run: this.runs.get(unit), journalOffset: pos?.offset, journalEpoch: pos?.epoch };
  }

  journalPosition(unit: string): JournalPosition | undefined {
    return this.root ? position(this.journal.get(unit)) : undefined;
  }

  units(): string[] {
    return [...this.tasks.getKeys()] as string[];
  }

  // Writes commit synchronously (noSync: no fsync, so tens of µs): the status is in the store
  // before the caller reports it, without a hop through lmdb's write thread. Once close() has
  // begun they are dropped: an async lmdb write that starts after the environment closed throws
  // from a timer callback, which would take the whole daemon down.
  async putTask(t: StoredTask): Promise<void> {
    if (this.root) this.tasks.putSync(t.entry.unit, t);
  }

  async setAssigned(unit: string, assigned: boolean): Promise<void> {
    if (!this.root) return;
    const t = this.tasks.get(unit);
    if (t) this.tasks.putSync(unit, { ...t, assigned });
  }

  async putStatus(unit: string, s: TaskStatus): Promise<void> {
    if (this.root) this.statuses.putSync(unit, s);
  }

  async putRun(unit: string, run: RunInfo | undefined): Promise<void> {
    if (!this.root) return;
    if (run) this.runs.putSync(unit, run);
    else this.runs.removeSync(unit);
  }

  /**
   * Batched (async): losing the last positions only means a few lines sent again, which the
   * journal stream drops as duplicates (same epoch and offset, same Nats-Msg-Id).
   */
  putJournalOffset(unit: string, offset: number, epoch?: number): Promise<boolean> {
    return this.root ? this.journal.put(unit, epoch === undefined ? offset : { offset, epoch }) : Promise.resolve(false);
  }

  async delete(unit: string): Promise<void> {
    if (!this.root) return;
    this.tasks.removeSync(unit);
    this.statuses.removeSync(unit);
    this.runs.removeSync(unit);
    this.journal.removeSync(unit);
  }
}
