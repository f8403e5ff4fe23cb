// The process entry of the CLI (bin/flotilla.js loads the compiled copy of this file).
import { main, printError } from "./main.js";

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    printError(e);
    process.exitCode = 1;
  },
);
