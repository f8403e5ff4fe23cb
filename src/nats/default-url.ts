// Where a client connects when nothing says otherwise: nats-server's default port on this host.
// A file of its own so that the CLI can print it in --help without loading the NATS client.
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
