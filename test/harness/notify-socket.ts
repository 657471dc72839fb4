// A stand-in for systemd's notification socket: a unix datagram socket the daemon under test sends
// READY=1, STATUS=…, WATCHDOG=1 and STOPPING=1 to. Node cannot receive unix datagrams, so a tiny
// python3 receiver (argument array, no shell) prints each datagram as one JSON line.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { makeTempDir, removeDir } from './temp-dir.js';

const RECEIVER = `
import json, os, socket, sys, time
path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
# Like /run/systemd/notify: the daemon sends after dropping to the backup user.
os.chmod(path, 0o666)
print(json.dumps({"bound": path}), flush=True)
while True:
    data = sock.recv(65536)
    print(json.dumps({"at": time.time(), "data": data.decode("utf-8", "replace")}), flush=True)
`;

export interface NotifyMessage {
  /** Milliseconds since the epoch when the datagram arrived. */
  readonly at: number;
  /** The assignments of one datagram, e.g. ["STATUS=idle · next …"]. */
  readonly fields: readonly string[];
}

export interface NotifySocket {
  readonly path: string;
  readonly messages: readonly NotifyMessage[];
  /** Every value sent for a field, in arrival order: values('STATUS'). */
  values(field: string): { at: number; value: string }[];
  waitFor(what: string, predicate: (message: NotifyMessage) => boolean, timeoutMs?: number): Promise<NotifyMessage>;
  stop(): Promise<void>;
}

export async function startNotifySocket(): Promise<NotifySocket> {
  const dir = await makeTempDir('notify');
  const path = join(dir, 'notify.sock');
  const receiver = execa('python3', ['-u', '-c', RECEIVER, path], {
    reject: false,
    stdin: 'ignore',
    stderr: 'inherit',
  });
  const messages: NotifyMessage[] = [];
  let bound = false;
  const lines = createInterface({ input: receiver.stdout });
  lines.on('line', (line) => {
    const parsed = JSON.parse(line) as { bound?: string; at?: number; data?: string };
    if (parsed.bound !== undefined) bound = true;
    if (parsed.data !== undefined && parsed.at !== undefined) {
      messages.push({ at: parsed.at * 1000, fields: parsed.data.split('\n').filter((field) => field !== '') });
    }
  });
  const deadline = Date.now() + 15_000;
  while (!bound) {
    if (Date.now() > deadline || receiver.exitCode !== null)
      throw new Error('the notify socket receiver did not start');
    await sleep(20);
  }

  const waitFor = async (what: string, predicate: (message: NotifyMessage) => boolean, timeoutMs = 120_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = messages.find(predicate);
      if (found !== undefined) return found;
      if (Date.now() > until) {
        const seen = messages.map((message) => message.fields.join(' | ')).join('\n  ');
        throw new Error(`timed out waiting for ${what}; received:\n  ${seen}`);
      }
      await sleep(50);
    }
  };

  return {
    path,
    messages,
    values: (field) =>
      messages.flatMap((message) =>
        message.fields
          .filter((entry) => entry.startsWith(`${field}=`))
          .map((entry) => ({ at: message.at, value: entry.slice(field.length + 1) })),
      ),
    waitFor,
    stop: async () => {
      receiver.kill('SIGTERM');
      await receiver;
      await removeDir(dir);
    },
  };
}
