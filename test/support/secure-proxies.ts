import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

import type { CertFiles } from './secure-certs';

interface Listening {
  close(cb: () => void): unknown;
  closeAllConnections?: () => void;
}

function closeServer(server: Listening | undefined, sockets: Set<net.Socket>): Promise<void> {
  if (!server) return Promise.resolve();
  for (const s of sockets) s.destroy();
  server.closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

/**
 * A TLS-terminating TCP proxy that demands a client certificate signed by the given CA (mTLS), then
 * forwards the plain bytes to a server that speaks no TLS of its own (the Temporal dev server): what
 * a load balancer in front of a Temporal cluster does. Refused handshakes are counted with their
 * reason, so a test can tell "refused" from "never tried".
 */
export class MtlsProxy {
  private server: tls.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Connections that completed the mutual handshake and were forwarded. */
  accepted = 0;
  /** Handshakes refused (no certificate, an unknown CA, not TLS at all), with the reason. */
  readonly refused: string[] = [];

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: { caFile: string; server: CertFiles; target: { host: string; port: number } },
  ) {}

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  open(): Promise<void> {
    const server = tls.createServer(
      {
        key: fs.readFileSync(this.opts.server.keyFile),
        cert: fs.readFileSync(this.opts.server.certFile),
        ca: fs.readFileSync(this.opts.caFile),
        requestCert: true,
        rejectUnauthorized: true,
        // gRPC clients offer h2 and some insist the server picks it.
        ALPNProtocols: ['h2'],
        minVersion: 'TLSv1.2',
      },
      (client) => {
        this.accepted += 1;
        const upstream = net.connect(this.opts.target.port, this.opts.target.host);
        for (const s of [client, upstream]) {
          this.sockets.add(s);
          s.on('close', () => this.sockets.delete(s));
          s.on('error', () => s.destroy());
        }
        client.pipe(upstream).pipe(client);
      },
    );
    server.on('tlsClientError', (err) => this.refused.push(err.message));
    this.server = server;
    return listen(server, this.host, this.port);
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    return closeServer(server, this.sockets);
  }
}

/**
 * An authenticating reverse proxy in front of Apicurio, whose own authentication needs an OIDC
 * server: every request must carry HTTP basic credentials, else it gets 401 with a registry-style
 * JSON error and never reaches the registry. Served over TLS with the test's server certificate.
 * Counts what it let through and what it refused.
 */
export class RegistryAuthProxy {
  private server: https.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly expected: Buffer;
  authorized = 0;
  /** Requests refused, with the user name they tried ('' when they sent no credentials). */
  readonly refused: string[] = [];

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: {
      server: CertFiles;
      username: string;
      password: string;
      /** Base URL of the registry behind, e.g. http://127.0.0.2:1234. */
      target: string;
    },
  ) {
    this.expected = Buffer.from(`Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`);
  }

  /** The Confluent-compatible API behind the proxy. */
  get url(): string {
    return `https://${this.host}:${this.port}/apis/ccompat/v7`;
  }

  private allowed(header: string | undefined): boolean {
    const got = Buffer.from(header ?? '');
    return got.length === this.expected.length && crypto.timingSafeEqual(got, this.expected);
  }

  open(): Promise<void> {
    const target = new URL(this.opts.target);
    const server = https.createServer(
      { key: fs.readFileSync(this.opts.server.keyFile), cert: fs.readFileSync(this.opts.server.certFile) },
      (req, res) => {
        if (!this.allowed(req.headers.authorization)) {
          const sent = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
          this.refused.push(sent ? (Buffer.from(sent, 'base64').toString().split(':')[0] ?? '') : '');
          req.resume();
          res.writeHead(401, {
            'WWW-Authenticate': 'Basic realm="schema-registry"',
            'Content-Type': 'application/vnd.schemaregistry.v1+json',
          });
          res.end(JSON.stringify({ error_code: 40101, message: 'Unauthorized' }));
          return;
        }
        this.authorized += 1;
        const headers = { ...req.headers, host: target.host };
        delete headers.authorization;
        const upstream = http.request(
          { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        upstream.on('error', (err) => {
          if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
          res.end(`registry behind the proxy failed: ${err.message}`);
        });
        req.pipe(upstream);
      },
    );
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    return listen(server, this.host, this.port);
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    return closeServer(server, this.sockets);
  }
}
