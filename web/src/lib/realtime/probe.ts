/**
 * A background check that the WebSocket gets through again, made while the client plays on SSE.
 *
 * A client falls back to SSE when its WebSocket cannot connect (a network down for a moment, a
 * proxy that drops upgraded connections). SSE works but costs a POST per message, so the client
 * keeps asking, with backoff, whether a WebSocket would work now. A probe counts as a success only
 * when the bridge greets it (`session_created` after `authenticate`), the same test the fallback
 * uses: a socket that opens and is cut before the greeting is a failure. A probe never joins a
 * campaign, so nobody at the table sees it; it says `disconnect` and closes once it knows.
 */
import {
  parseFrame,
  SUBPROTOCOL,
  type WebSocketFactory,
  type WebSocketLike,
} from "./transport";

/** A probe that hears nothing for this long has failed (a socket stuck half-open). */
export const PROBE_TIMEOUT_MS = 10_000;

export interface WebSocketProbe {
  /** Resolves `true` when the bridge greeted the probe, `false` on any failure. */
  readonly result: Promise<boolean>;
  /** Abandon the probe (the client disconnected): closes its socket, resolves `false`. */
  cancel(): void;
}

export function probeWebSocket(
  url: string,
  Impl: WebSocketFactory,
  token: string,
  timeoutMs = PROBE_TIMEOUT_MS,
): WebSocketProbe {
  let settle: (ok: boolean) => void = () => undefined;
  const result = new Promise<boolean>((resolve) => {
    settle = resolve;
  });
  let done = false;
  let socket: WebSocketLike | null = null;
  const finish = (ok: boolean): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    if (socket !== null) {
      if (ok && socket.readyState === 1) {
        socket.send(
          JSON.stringify({
            id: `probe-${Date.now()}`,
            type: "disconnect",
            reason: "probe",
          }),
        );
      }
      try {
        socket.close(1000, "probe");
      } catch {
        // Already closing: nothing left to release.
      }
    }
    settle(ok);
  };
  const timer = setTimeout(() => finish(false), timeoutMs);
  try {
    socket = new Impl(url, SUBPROTOCOL);
  } catch {
    finish(false);
    return { result, cancel: () => finish(false) };
  }
  socket.onopen = () =>
    socket?.send(
      JSON.stringify({
        id: `probe-${Date.now()}`,
        type: "authenticate",
        token,
      }),
    );
  socket.onmessage = (event) => {
    const text =
      typeof event.data === "string" ? event.data : String(event.data);
    for (const message of parseFrame(text)) {
      if (message.type === "session_created") finish(true);
      else if (message.type === "error" || message.type === "disconnect")
        finish(false);
    }
  };
  socket.onclose = () => finish(false);
  socket.onerror = () => undefined; // a close follows, and ends the probe
  return { result, cancel: () => finish(false) };
}
