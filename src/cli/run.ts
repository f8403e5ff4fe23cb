// The process entry of the CLI (bin/flotilla.js loads the compiled copy of this file).
import { main, printError } from "./main.js";

// `flotilla list-units | head`: the reader went away, which is not an error of ours. Exit
// quietly, as cat and ls do, instead of dying on an unhandled EPIPE with a stack trace.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    printError(e);
    process.exitCode = 1;
  },
);
