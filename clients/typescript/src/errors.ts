/** Errors thrown by the client (from the iteration of a `Client`). */

export class RinggateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The connection could not be opened. `status` is the HTTP status when the server answered one;
 * `transient` is true for failures a reconnect retries (refused, reset, timeout, HTTP 429/5xx).
 */
export class ConnectError extends RinggateError {
  readonly url: string;
  readonly status: number | undefined;
  readonly body: string | undefined;
  readonly transient: boolean;
  constructor(message: string, opts: { url: string; status?: number; body?: string; transient?: boolean }) {
    super(message);
    this.url = opts.url;
    this.status = opts.status;
    this.body = opts.body;
    this.transient = opts.transient ?? false;
  }
}

/** HTTP 401 / 403: no token, an unknown token, or a channel the key may not open. Never retried. */
export class AuthenticationError extends ConnectError {}

/** HTTP 400 / 404 / 405 / 426 ...: the request itself was refused (a bad `events=` name, a bad path). Never retried. */
export class RequestRejected extends ConnectError {}

/** Not a ringgate gateway: no WebSocket upgrade, a first frame that is not `Hello`, or no `Hello` in time. */
export class NotRinggateError extends ConnectError {}

/** The server answered a subscription (query or `subscribe` message) with an `Error` frame. */
export class SubscriptionError extends RinggateError {
  readonly code: string;
  readonly serverMessage: string;
  readonly body: unknown;
  constructor(code: string, message: string, body: unknown) {
    super(`server refused the subscription: ${code}: ${message}`);
    this.code = code;
    this.serverMessage = message;
    this.body = body;
  }
}

/** The connection dropped and `reconnect` is false. */
export class ConnectionLost extends RinggateError {
  readonly closeCode: number | undefined;
  readonly closeReason: string;
  constructor(message: string, closeCode: number | undefined, closeReason: string) {
    super(message);
    this.closeCode = closeCode;
    this.closeReason = closeReason;
  }
}

/** The server sent something that is not the protocol (unparseable frame, wrong shape). */
export class ProtocolError extends RinggateError {}
