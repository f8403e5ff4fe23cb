// One line per command group. Keep the order: it is the order of `flotilla --help`.
import type { CommandRegistrar } from "./main.js";
import { registerDaemon } from "./daemon.js";
import { registerUp } from "./up.js";
import { registerUnits } from "./units.js";
import { registerMachines } from "./machines.js";
import { registerJournal } from "./journal.js";
import { registerMachine } from "./machine.js";
import { registerStatecharts } from "./statecharts.js";
import { registerUi } from "./ui.js";
import { registerHealth } from "./health.js";

export const registrars: CommandRegistrar[] = [
  registerDaemon,
  registerUp,
  registerUnits,
  registerMachines,
  registerMachine,
  registerJournal,
  registerStatecharts,
  registerUi,
  registerHealth,
];
