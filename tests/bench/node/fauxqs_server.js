// Start fauxqs (an SQS emulator) on a loopback port through its library, not its CLI (which forces
// request logging on), and tell the parent which port on stdout: one JSON line `{"port": N}`.
// Runs until SIGTERM/SIGINT or until the parent closes stdin.
import { startFauxqs } from "fauxqs";

const server = await startFauxqs({ port: 0, logger: false, host: "127.0.0.1" });
process.stdout.write(JSON.stringify({ port: server.port }) + "\n");

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
