export * from "./errors.js";
export * from "./codec.js";
export * from "./names.js";
export * from "./messages.js";
