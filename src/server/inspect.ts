// The inspector moved to src/inspect/publisher.ts (inspection v2); this keeps the older import path.
export { inspector, InspectMessage, type InspectorOptions } from "../inspect/publisher.js";
