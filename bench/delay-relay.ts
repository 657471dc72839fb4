// A TCP relay that holds every chunk for a fixed time in each direction: the round trip of a WAN
// link, on a kernel without the netem qdisc (see ../shared/reference/fleet-facts.md). The benchmark
// runs it inside the link's network namespace, in front of the target's sshd:
//
//   node --import tsx bench/delay-relay.ts LISTEN_HOST:PORT TARGET_HOST:PORT ONE_WAY_DELAY_MS
//
// It prints `ready` once it listens and ends on SIGTERM. The delay is added per chunk as the relay
// reads it, in order. TCP's own acknowledgements on each leg do not see it, so the window of the
// client's connection never limits the rate (at 100 Mbit/s and 20 ms, 250 KB in flight, which Linux's
// default windows allow anyway); what the delay does cost is every request/answer exchange: the ssh
// handshake, rsync's protocol turns, duplicity's listing before each put.
import { connect, createServer, type Socket } from 'node:net';

/** Bytes held per direction (in the queue and the socket's buffer) before the reading side is paused. */
const HOLD_LIMIT = 4 * 1024 * 1024;

function parseAddress(text: string | undefined): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(text ?? '');
  if (match?.[1] === undefined || match[2] === undefined) throw new Error(`not HOST:PORT: ${String(text)}`);
  return { host: match[1], port: Number(match[2]) };
}

function relay(from: Socket, to: Socket, delayMs: number): void {
  const queue: { due: number; chunk: Buffer | null }[] = [];
  let held = 0;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    const next = queue[0];
    if (timer !== undefined || next === undefined) return;
    timer = setTimeout(flush, Math.max(0, next.due - performance.now()));
  };
  const pauseOrResume = (): void => {
    if (held + to.writableLength > HOLD_LIMIT) from.pause();
    else if (from.isPaused()) from.resume();
  };
  const flush = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue[0] !== undefined && queue[0].due <= now) {
      const { chunk } = queue.shift()!;
      if (chunk === null) {
        to.end();
      } else {
        held -= chunk.length;
        if (!to.destroyed) to.write(chunk);
      }
    }
    pauseOrResume();
    schedule();
  };
  from.on('data', (chunk: Buffer) => {
    queue.push({ due: performance.now() + delayMs, chunk });
    held += chunk.length;
    pauseOrResume();
    schedule();
  });
  from.on('end', () => {
    queue.push({ due: performance.now() + delayMs, chunk: null });
    schedule();
  });
  to.on('drain', pauseOrResume);
}

function main(): void {
  const [listenText, targetText, delayText] = process.argv.slice(2);
  const listen = parseAddress(listenText);
  const target = parseAddress(targetText);
  const delayMs = Number(delayText);
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new Error(`not a delay in ms: ${String(delayText)}`);
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      // A socket closes once both of its directions ended (each end is passed on, delayed).
      socket.on('close', () => sockets.delete(socket));
    }
    relay(client, upstream, delayMs);
    relay(upstream, client, delayMs);
  });
  server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => {
    server.close();
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  });
}

main();
