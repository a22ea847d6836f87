// A byte relay between a UNIX socket and a TCP address, run inside a stack's network namespace
// (`ip netns exec NS node relay.js LISTEN TARGET`): UNIX sockets reach across namespaces, so the
// test process (in the machine's namespace) reaches an agent's gRPC port through one, and the
// coordinator (in the front-end's namespace) reaches the fake oned of the test process through
// another. Each of LISTEN and TARGET is `unix:/absolute/path` or `host:port`. Prints "ready" once
// it listens; runs until SIGTERM.
import net from 'node:net';

type Address = { path: string } | { host: string; port: number };

function parse(spec: string | undefined): Address {
  if (spec?.startsWith('unix:/')) return { path: spec.slice('unix:'.length) };
  const m = spec ? /^([0-9.]+):(\d{1,5})$/.exec(spec) : null;
  if (!m) throw new Error(`relay: "${spec ?? ''}" is neither unix:/path nor host:port`);
  return { host: m[1] as string, port: Number(m[2]) };
}

const [listenSpec, targetSpec] = process.argv.slice(2);
const listen = parse(listenSpec);
const target = parse(targetSpec);
const sockets = new Set<net.Socket>();

const server = net.createServer((inbound) => {
  const outbound = net.connect(target);
  for (const s of [inbound, outbound]) {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  }
  // Either side failing or closing ends both: the peer sees what a direct connection would show.
  inbound.on('error', () => outbound.destroy());
  outbound.on('error', () => inbound.destroy());
  inbound.pipe(outbound);
  outbound.pipe(inbound);
});
server.on('error', (err) => {
  console.error(`relay ${listenSpec ?? ''} -> ${targetSpec ?? ''}: ${err.message}`);
  process.exit(1);
});
server.listen(listen, () => console.log('ready'));
process.once('SIGTERM', () => {
  for (const s of sockets) s.destroy();
  server.close(() => process.exit(0));
});
