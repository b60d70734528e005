/**
 * The two ways to reach the bridge behind one small interface: a WebSocket at `/ws`, or the SSE
 * fallback (a `GET /api/events` stream for everything the bridge sends, one `POST /api/messages`
 * per message the client sends, whose reply is fed back as if it had come on the stream).
 * A transport does not reconnect: it reports its end once, and the client decides what next.
 */
import { createParser } from 'eventsource-parser';
import type { ServerMessage } from './messages';

export type TransportKind = 'websocket' | 'sse';
export type Outgoing = Record<string, unknown> | Record<string, unknown>[];

export interface CloseInfo {
	/** WebSocket close code, or the HTTP status that refused the stream (0: network failure). */
	code: number;
	/** The close reason, or the error code of a refused stream (e.g. `token_expired: ...`). */
	reason: string;
	/** Whether the connection was ever established. */
	opened: boolean;
}

export interface TransportHandlers {
	open(): void;
	message(message: ServerMessage): void;
	close(info: CloseInfo): void;
}

export interface Transport {
	readonly kind: TransportKind;
	/** One message, or several as one batch frame (handled by the bridge in order). */
	send(message: Outgoing): void;
	close(code?: number, reason?: string): void;
}

/** The part of the WebSocket API the client uses (the browser's, `ws`'s or undici's). */
export interface WebSocketLike {
	readonly readyState: number;
	send(data: string): void;
	close(code?: number, reason?: string): void;
	onopen: ((event: unknown) => void) | null;
	onmessage: ((event: { data: unknown }) => void) | null;
	onclose: ((event: { code: number; reason: string }) => void) | null;
	onerror: ((event: unknown) => void) | null;
}

export type WebSocketFactory = new (url: string, protocols?: string | string[]) => WebSocketLike;

export const SUBPROTOCOL = 'mcp-ttrpg-v1';

function decode(data: unknown): string {
	if (typeof data === 'string') return data;
	if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
	if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
	return String(data);
}

/** Each message of a frame or body (a JSON array is a batch); non-JSON is ignored. */
export function parseFrame(text: string): ServerMessage[] {
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch {
		return [];
	}
	const items = Array.isArray(value) ? value : [value];
	return items.filter(
		(item): item is ServerMessage => typeof item === 'object' && item !== null && 'type' in item
	);
}

export class WebSocketTransport implements Transport {
	readonly kind = 'websocket' as const;
	private readonly socket: WebSocketLike;
	private opened = false;
	private ended = false;

	constructor(url: string, Impl: WebSocketFactory, private readonly handlers: TransportHandlers) {
		this.socket = new Impl(url, SUBPROTOCOL);
		this.socket.onopen = () => {
			this.opened = true;
			this.handlers.open();
		};
		this.socket.onmessage = (event) => {
			for (const message of parseFrame(decode(event.data))) {
				if (this.ended) return; // what arrives after the end belongs to no connection
				this.handlers.message(message);
			}
		};
		this.socket.onclose = (event) => this.end({ code: event.code, reason: event.reason, opened: this.opened });
		this.socket.onerror = () => {
			// A close event always follows; it carries what there is to know.
		};
	}

	send(message: Outgoing): void {
		if (this.socket.readyState === 1) this.socket.send(JSON.stringify(message));
	}

	close(code = 1000, reason = ''): void {
		try {
			this.socket.close(code, reason);
		} catch {
			// Closing a socket that never opened can throw in some implementations.
		}
		this.end({ code, reason: reason || 'closed by client', opened: this.opened });
	}

	private end(info: CloseInfo): void {
		if (this.ended) return;
		this.ended = true;
		this.handlers.close(info);
	}
}

export interface SseOptions {
	baseUrl: string;
	token: () => string;
	campaignId: string | null;
	lastSeq: number | null;
	epoch: string | null;
	fetch: typeof fetch;
}

/** Server-Sent Events over `fetch` (not `EventSource`): the token goes in a header, and it runs in Node. */
export class SseTransport implements Transport {
	readonly kind = 'sse' as const;
	private readonly abort = new AbortController();
	private sessionId: string | null = null;
	private opened = false;
	private ended = false;

	constructor(private readonly options: SseOptions, private readonly handlers: TransportHandlers) {
		void this.stream();
	}

	private async stream(): Promise<void> {
		const url = new URL('/api/events', this.options.baseUrl);
		if (this.options.campaignId !== null) url.searchParams.set('campaign_id', this.options.campaignId);
		if (this.options.lastSeq !== null && this.options.campaignId !== null) {
			url.searchParams.set('last_seq', String(this.options.lastSeq));
			if (this.options.epoch !== null) url.searchParams.set('epoch', this.options.epoch);
		}
		let response: Response;
		try {
			response = await this.options.fetch(url, {
				headers: { Accept: 'text/event-stream', Authorization: `Bearer ${this.options.token()}` },
				signal: this.abort.signal,
				cache: 'no-store'
			});
		} catch (error) {
			this.end({ code: 0, reason: String(error), opened: false });
			return;
		}
		if (!response.ok || response.body === null) {
			let reason = `HTTP ${response.status}`;
			try {
				const body = (await response.json()) as { error?: { code?: string; message?: string } };
				if (body.error?.code) reason = `${body.error.code}: ${body.error.message ?? ''}`;
			} catch {
				// Not JSON: the status says enough.
			}
			this.end({ code: response.status, reason, opened: false });
			return;
		}
		this.opened = true;
		this.handlers.open();
		const parser = createParser({
			onEvent: (event) => {
				for (const message of parseFrame(event.data)) {
					if (this.ended) return;
					if (message.type === 'session_created') this.sessionId = message.session_id ?? null;
					this.handlers.message(message);
				}
			}
		});
		const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
		try {
			for (;;) {
				const { done, value } = await reader.read();
				if (done) break;
				parser.feed(value);
			}
			this.end({ code: 1006, reason: 'stream ended', opened: true });
		} catch (error) {
			this.end({ code: 1006, reason: String(error), opened: true });
		}
	}

	send(message: Outgoing): void {
		if (this.ended) return;
		void this.post(message);
	}

	private async post(message: Outgoing): Promise<void> {
		const inSession = (one: Record<string, unknown>) =>
			this.sessionId !== null ? { ...one, session_id: this.sessionId } : one;
		const body = Array.isArray(message) ? message.map(inSession) : inSession(message);
		let response: Response;
		try {
			response = await this.options.fetch(new URL('/api/messages', this.options.baseUrl), {
				method: 'POST',
				headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.options.token()}` },
				body: JSON.stringify(body)
			});
		} catch (error) {
			// The bridge is unreachable: drop the stream too, so the client reconnects and resends.
			this.close(1006, `POST failed: ${String(error)}`);
			return;
		}
		let text: string;
		try {
			text = await response.text();
		} catch (error) {
			// The answer was cut off: whether the bridge applied it or not, the resend settles it.
			this.close(1006, `POST answer lost: ${String(error)}`);
			return;
		}
		const replies = parseFrame(text);
		const lost = replies.some(
			(reply) => reply.type === 'error' && reply.error.code === 'not_found' && response.status === 404
		);
		if (lost) {
			// The stream's session is gone: reconnect; the request is resent with its id.
			this.close(1006, 'session no longer streams');
			return;
		}
		for (const reply of replies) if (!this.ended) this.handlers.message(reply);
	}

	close(code = 1000, reason = ''): void {
		this.abort.abort();
		this.end({ code, reason: reason || 'closed by client', opened: this.opened });
	}

	private end(info: CloseInfo): void {
		if (this.ended) return;
		this.ended = true;
		this.handlers.close(info);
	}
}
