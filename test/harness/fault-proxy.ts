/**
 * A fault-injecting HTTP proxy on loopback, for object-storage tests: it forwards requests to a target
 * (the Swift S3 endpoint) and, for the requests a fault matches, answers with an error status (500, 503
 * SlowDown...), resets the connection after part of the request body, or stalls (never answers).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';

/** What a fault does to the request it matches. */
export type FaultAction =
  /** Answer with this status and an S3 error document with this code (the request body is read first). */
  | { kind: 'status'; status: number; code: string }
  /** Destroy the client's connection once this many bytes of the request body arrived. */
  | { kind: 'reset'; afterBytes: number }
  /** Read the request and never answer (the client's idle timeout must fire). */
  | { kind: 'stall' }
  /** Forward the request with the first byte of its body inverted (the server's checksum check must refuse it). */
  | { kind: 'corrupt' };

/** One fault: which requests it applies to and how many times. */
export interface Fault {
  /** Which requests: HTTP method, and a test on the path and query (`/bucket/key?partNumber=2&uploadId=...`). */
  method?: string;
  url?: RegExp;
  /** How many matching requests it hits before it is used up. @default 1 */
  times?: number;
  action: FaultAction;
}

/** A request as the proxy saw it. */
export interface ProxiedRequest {
  method: string;
  url: string;
  /** The fault applied, if any. */
  fault?: FaultAction['kind'];
}

/** A running proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`. */
  endpoint: string;
  /** Queue a fault; faults are tried in the order added. */
  inject(fault: Fault): void;
  /** Forget the faults not yet used up. */
  clear(): void;
  /** Every request so far, in arrival order. */
  readonly requests: readonly ProxiedRequest[];
  /** Faults applied so far. */
  hits(): number;
  /** Stop listening and drop every connection (stalled ones included). */
  close(): Promise<void>;
}

/** Start a proxy in front of `target` (`http://127.0.0.1:PORT`). */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const faults: { fault: Fault; left: number }[] = [];
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  let hits = 0;

  const take = (req: IncomingMessage): FaultAction | undefined => {
    const i = faults.findIndex(
      ({ fault }) =>
        (fault.method === undefined || fault.method === req.method) && (fault.url === undefined || fault.url.test(req.url ?? '')),
    );
    const entry = faults[i];
    if (!entry) return undefined;
    entry.left -= 1;
    if (entry.left <= 0) faults.splice(i, 1);
    return entry.fault.action;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, corrupt = false): void => {
    const out = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    out.on('error', () => res.destroy());
    let first = corrupt;
    const body = corrupt
      ? req.pipe(
          new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              if (first && chunk.length > 0) {
                first = false;
                const copy = Buffer.from(chunk);
                copy[0] = copy[0]! ^ 0xff;
                return callback(null, copy);
              }
              callback(null, chunk);
            },
          }),
        )
      : req;
    body.pipe(out);
    req.on('error', () => out.destroy());
    res.on('close', () => {
      if (!res.writableFinished) out.destroy();
    });
  };

  const server: Server = createServer((req, res) => {
    const action = take(req);
    requests.push({ method: req.method ?? '', url: req.url ?? '', ...(action ? { fault: action.kind } : {}) });
    if (!action) return forward(req, res);
    hits += 1;
    switch (action.kind) {
      case 'status': {
        req.resume();
        req.on('end', () => {
          const body =
            `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${action.code}</Code>` +
            `<Message>injected by the test proxy</Message><RequestId>fault${hits}</RequestId></Error>`;
          res.writeHead(action.status, {
            'content-type': 'application/xml',
            'content-length': Buffer.byteLength(body),
            connection: 'close',
          });
          res.end(body);
        });
        return;
      }
      case 'reset': {
        let seen = 0;
        const cut = (): void => {
          req.socket.resetAndDestroy();
        };
        if (action.afterBytes <= 0) return cut();
        req.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen >= action.afterBytes) cut();
        });
        req.on('end', cut);
        return;
      }
      case 'stall':
        req.resume();
        return;
      case 'corrupt':
        return forward(req, res, true);
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('fault proxy: no address');

  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    inject: (fault) => {
      faults.push({ fault, left: fault.times ?? 1 });
    },
    clear: () => {
      faults.length = 0;
    },
    requests,
    hits: () => hits,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
