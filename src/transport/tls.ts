import { isIP, type Server } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type PeerCertificate, type SecureContext, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { ConnectionPool, type StreamTransportOptions } from './connection-pool.js';
import { listenStream } from './listen.js';
import type { TcpConnection } from './tcp-connection.js';
import { checkSipServerIdentity, sipDomainIdentities, subjectAltNames } from './tls-identity.js';
import { TransportError, addressKey, type Transport, type TransportAddress, type TransportReceiver } from './types.js';

/** Where a TLS message goes: an address, and the SIP domain whose certificate the far end must present. */
export interface TlsTarget extends TransportAddress {
  /**
   * The SIP domain of the request's target (RFC 5922 §7.1–7.2; RFC 3263 gives the
   * address): sent as SNI and checked against the server's certificate. Without
   * one, the certificate must be for the IP address itself.
   */
  serverName?: string;
}

/** What a TLS handshake proved about the far end of a connection. */
export interface TlsPeerIdentity {
  /** The certificate chain verified against the trusted CAs. Always true for connections this side opened (unless `rejectUnauthorized: false`). */
  authorized: boolean;
  /** Why it did not verify: an OpenSSL code such as `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, or `NO_CERTIFICATE`. */
  authorizationError?: string;
  /** Subject fields of the peer's certificate (`CN`, `O`, …); empty without one. */
  subject: Record<string, string>;
  /** The subjectAltName entries, e.g. `DNS:sip.example.com`, `URI:sip:example.com`. */
  subjectAltNames: string[];
  /** The SIP domains the certificate is for (RFC 5922 §7.1). Trust them only when `authorized`. */
  sipDomains: string[];
  /** SHA-256 fingerprint of the peer's certificate (`AB:CD:…`); undefined without one. */
  fingerprint256?: string;
  /** Inbound: the name the client asked for with SNI. Outbound: the SIP domain this side checked. */
  serverName?: string;
}

export interface TlsTransportOptions extends StreamTransportOptions {
  /** This side's certificate chain (PEM): presented to clients, and to servers that ask for one. */
  cert?: string | Buffer | Array<string | Buffer>;
  /** The private key of `cert` (PEM). */
  key?: string | Buffer | Array<string | Buffer>;
  /** CAs trusted to sign peers' certificates (PEM; default: Node's bundled root CAs). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Pick a certificate by the name a client asks for (SNI); as node:tls calls it. */
  SNICallback?: (servername: string, callback: (err: Error | null, ctx?: SecureContext) => void) => void;
  /** Ask clients for a certificate (mutual TLS); what it proved is `peerIdentity(remote)`. Default false. */
  requestCert?: boolean;
  /** With `requestCert`: refuse a client whose certificate is missing or does not verify (default true). */
  rejectUnauthorizedClients?: boolean;
  /**
   * Verify the certificate of a server this side connects to: its chain against `ca`, its
   * name against the SIP domain (RFC 5922). Default true; false turns off all checking.
   */
  rejectUnauthorized?: boolean;
  /**
   * The SIP domain to verify when a send() target carries no `serverName`; return
   * undefined for none (the certificate must then be for the IP address).
   */
  serverNameFor?: (to: TransportAddress) => string | undefined;
  /** Certificate and key presented when a server asks for one (default: `cert` and `key`). */
  clientCert?: string | Buffer | Array<string | Buffer>;
  clientKey?: string | Buffer | Array<string | Buffer>;
}

// X.509 verification results OpenSSL reports through node:tls (see the node:tls docs).
const UNTRUSTED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD', 'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE',
  'CERT_UNTRUSTED', 'CERT_REJECTED',
]);

function identityOf(socket: TLSSocket, serverName: string | undefined): TlsPeerIdentity {
  const cert: PeerCertificate | undefined = socket.getPeerCertificate();
  const has = cert !== undefined && Object.keys(cert).length > 0;
  const subject: Record<string, string> = {};
  if (has && cert.subject) for (const [k, v] of Object.entries(cert.subject)) subject[k] = Array.isArray(v) ? v.join(', ') : String(v);
  const authError = socket.authorizationError as unknown as string | Error | null | undefined;
  const identity: TlsPeerIdentity = {
    // Node calls a server socket that asked for no certificate "authorized": here it means a certificate verified.
    authorized: has && socket.authorized && !authError,
    subject,
    subjectAltNames: has ? subjectAltNames(cert.subjectaltname).map((e) => `${e.type}:${e.value}`) : [],
    sipDomains: has ? sipDomainIdentities(cert) : [],
  };
  if (!has) identity.authorizationError = 'NO_CERTIFICATE';
  else if (authError) identity.authorizationError = typeof authError === 'string' ? authError : authError.message;
  if (has && cert.fingerprint256) identity.fingerprint256 = cert.fingerprint256;
  if (serverName) identity.serverName = serverName;
  return identity;
}

/**
 * SIP over TLS (RFC 3261 §26.2, RFC 5922, RFC 5626 keep-alives): `protocol: 'tls'`,
 * so Via says `SIP/2.0/TLS`. Connections and their limits are TcpTransport's (one
 * ConnectionPool): separate inbound and outbound budgets, a cap per address, idle
 * eviction, message deadlines. An inbound connection is counted from its TCP accept,
 * before the handshake, and the handshake is part of its first-message time.
 * Outbound connections are verified (chain, and RFC 5922 name) and reused per
 * address, port and SIP domain.
 */
export class TlsTransport implements Transport {
  readonly protocol = 'tls';
  readonly reliable = true;
  private receiver: TransportReceiver | undefined;
  private closed = false;
  private readonly pool: ConnectionPool;
  /** Holds the server-side TLS settings; accepted sockets are handed to it (not listening itself). */
  private readonly tlsServer: TlsServer;
  private readonly identities = new WeakMap<TcpConnection, TlsPeerIdentity>();
  /** The latest verified outbound connection per address:port (see `verifiedTo`). */
  private readonly verifiedByAddress = new Map<string, TcpConnection>();
  private readonly requireClientCert: boolean;

  private constructor(
    private readonly server: Server,
    readonly local: TransportAddress,
    private readonly options: TlsTransportOptions,
  ) {
    this.pool = new ConnectionPool(options, {
      onFrame: (bytes, conn) => this.receiver?.onMessage(bytes, conn.remote, this),
      onError: (err) => this.report(err),
      onClose: (conn) => {
        if (!conn.inbound && this.verifiedByAddress.get(addressKey(conn.remote)) === conn) this.verifiedByAddress.delete(addressKey(conn.remote));
      },
    });
    this.requireClientCert = options.requestCert === true && options.rejectUnauthorizedClients !== false;
    this.tlsServer = createTlsServer({
      cert: options.cert,
      key: options.key,
      ca: options.ca,
      SNICallback: options.SNICallback,
      requestCert: options.requestCert ?? false,
      // Checked below, so a refused client is reported with the reason.
      rejectUnauthorized: false,
    });
    this.tlsServer.on('secureConnection', (socket: TLSSocket) => this.secured(socket));
    this.tlsServer.on('tlsClientError', (err: Error & { code?: string }) => {
      // A peer that hung up, or that this side closed (limits, deadlines), is no handshake failure.
      if (err.code === 'ECONNRESET' || this.closed) return;
      this.report(new TransportError('TLS_HANDSHAKE', `TLS handshake with a client failed: ${err.message}`, undefined, err));
    });
    server.on('connection', (socket) => {
      // Within the limits, or refused before any TLS work is done.
      if (this.pool.accept(socket, true)) this.tlsServer.emit('connection', socket);
    });
  }

  /** Number of open connections, inbound and outbound (inbound ones counted from their TCP accept). */
  get connectionCount(): number {
    return this.pool.size;
  }

  get inboundConnectionCount(): number {
    return this.pool.inboundCount;
  }

  get outboundConnectionCount(): number {
    return this.pool.outboundCount;
  }

  /** Bytes of unfinished messages held across all connections. */
  get bufferedBytes(): number {
    return this.pool.bufferedBytes;
  }

  static async listen(options: TlsTransportOptions = {}): Promise<TlsTransport> {
    const { server, local } = await listenStream(options.host ?? '127.0.0.1', options.port ?? 0, 'TLS');
    return new TlsTransport(server, local, options);
  }

  setReceiver(receiver: TransportReceiver): void {
    this.receiver = receiver;
  }

  /**
   * What the TLS handshake proved about the far end of the connection to or from
   * `remote` (the `from` of a received message, or a send() target): for an
   * `authenticate` hook to trust a client certificate. Undefined when there is no
   * such connection, or its handshake is not done.
   */
  peerIdentity(remote: TlsTarget): TlsPeerIdentity | undefined {
    const conn = this.find(remote);
    return conn ? this.identities.get(conn) : undefined;
  }

  async send(bytes: Uint8Array, to: TlsTarget): Promise<void> {
    if (this.closed) throw new TransportError('CLOSED', 'transport is closed', to);
    const conn = this.find(to) ?? this.connectTo(to, this.serverNameOf(to));
    await conn.send(bytes);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.pool.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private report(err: TransportError): void {
    this.receiver?.onError?.(err, this);
  }

  private serverNameOf(to: TlsTarget): string | undefined {
    const name = to.serverName ?? this.options.serverNameFor?.(to);
    return name ? name.toLowerCase() : undefined;
  }

  /**
   * The connection for `to`: one opened to that address for the same SIP domain, or
   * else one the peer opened from that address and port (responses and requests
   * back to it go over it, RFC 3261 §18.2.2). A connection opened for another domain
   * is not reused: its certificate was checked for that one.
   */
  private find(to: TlsTarget): TcpConnection | undefined {
    const name = this.serverNameOf(to);
    const plain = addressKey(to);
    if (name === undefined) return this.pool.get(plain) ?? this.verifiedTo(plain);
    const exact = this.pool.get(`${plain} ${name}`);
    if (exact) return exact;
    const other = this.pool.get(plain);
    return other?.inbound ? other : undefined;
  }

  /**
   * An open connection this side made to `plain` (address:port) whose handshake verified, for
   * whichever SIP domain. Used for a target that names no domain (an IP address): RFC 3261
   * §18.1.1 recommends a connection open to the destination's address, port and transport be
   * used. This is how in-dialog requests reach a proxy that record-routed itself by IP address
   * (`<sip:192.0.2.1:5061;transport=tls;lr>`, as Kamailio does): the connection its domain's
   * certificate opened carries them, instead of a new one refused for lacking the address in
   * that certificate. A target naming a domain never takes a connection verified for another.
   */
  private verifiedTo(plain: string): TcpConnection | undefined {
    return this.verifiedByAddress.get(plain);
  }

  private connectTo(to: TransportAddress, serverName: string | undefined): TcpConnection {
    const remote: TlsTarget = { address: to.address, port: to.port };
    if (serverName) remote.serverName = serverName;
    const key = serverName ? `${addressKey(to)} ${serverName}` : addressKey(to);
    const conn = this.pool.connect(key, remote, () => {
      const o = this.options;
      const socket = tlsConnect({
        host: to.address,
        port: to.port,
        // RFC 6066 §3: SNI carries host names only, never an IP address.
        ...(serverName && isIP(serverName) === 0 ? { servername: serverName } : {}),
        ca: o.ca,
        cert: o.clientCert ?? o.cert,
        key: o.clientKey ?? o.key,
        rejectUnauthorized: o.rejectUnauthorized ?? true,
        // Node passes `servername` (else the IP address): RFC 5922 §7 for a SIP domain.
        checkServerIdentity: (host, cert) => checkSipServerIdentity(serverName ?? host, cert),
      });
      const ready = new Promise<void>((resolve, reject) => {
        const timer = this.pool.clock.setTimer(this.pool.connectTimeoutMs, () => {
          socket.destroy();
          reject(new TransportError('CONNECT_FAILED', `TLS connect to ${key} timed out`, remote));
        });
        socket.once('secureConnect', () => {
          timer.cancel();
          const identity = identityOf(socket, serverName);
          this.identities.set(conn, identity);
          if (identity.authorized) this.verifiedByAddress.set(addressKey(to), conn);
          resolve();
        });
        socket.once('error', (err: Error & { code?: string }) => {
          timer.cancel();
          reject(this.connectError(err, key, remote));
        });
      });
      return { socket, ready };
    });
    return conn;
  }

  private connectError(err: Error & { code?: string }, key: string, remote: TlsTarget): TransportError {
    const code = err.code ?? '';
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
      return new TransportError('TLS_IDENTITY', `TLS connect to ${key}: ${err.message}`, remote, err);
    }
    if (UNTRUSTED.has(code)) return new TransportError('TLS_UNTRUSTED', `TLS connect to ${key}: certificate not trusted (${code}): ${err.message}`, remote, err);
    if (code.startsWith('ERR_SSL_')) return new TransportError('TLS_HANDSHAKE', `TLS connect to ${key}: handshake failed: ${err.message}`, remote, err);
    return new TransportError('CONNECT_FAILED', `TLS connect to ${key} failed: ${err.message}`, remote, err);
  }

  /** A client's handshake is done: check its certificate if one is required, then let messages flow. */
  private secured(socket: TLSSocket): void {
    const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const conn = this.pool.get(addressKey(remote));
    if (!conn || !conn.inbound || !conn.awaitingUpgrade) {
      socket.destroy();
      return;
    }
    const identity = identityOf(socket, (socket as TLSSocket & { servername?: string | false }).servername || undefined);
    if (this.requireClientCert && !identity.authorized) {
      conn.close(new TransportError('TLS_UNTRUSTED', `refused TLS client ${addressKey(remote)}: certificate ${identity.authorizationError === 'NO_CERTIFICATE' ? 'missing' : `not trusted (${identity.authorizationError})`}`, remote));
      return;
    }
    this.identities.set(conn, identity);
    conn.upgrade(socket);
  }
}
