// One line per command group. Keep the order: it is the order of `flotilla --help`.
import type { CommandRegistrar } from "./main.js";

export const registrars: CommandRegistrar[] = [];
