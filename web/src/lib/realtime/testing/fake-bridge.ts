/**
 * An in-memory stand-in for the bridge's WebSocket, for unit tests of the client's own logic
 * (what it sends when, and how it reacts) without a network. It speaks just enough protocol:
 * authenticate → session_created, session_create/attach → campaign_snapshot, anything else →
 * ack, unless the test's `answer` says otherwise.
 */
import type { WebSocketFactory, WebSocketLike } from '../transport';

export type Message = Record<string, unknown> & { id: string; type: string };
export type Answer = (message: Message, socket: FakeSocket) => Record<string, unknown>[] | null | undefined;

const base = () => ({ id: Math.random().toString(36).slice(2), timestamp: Date.now(), version: '1.0.0' });

export class FakeBridge {
	readonly sockets: FakeSocket[] = [];
	readonly received: Message[] = [];
	/** Connections to refuse (never open) before accepting again. */
	refuse = 0;
	heartbeatInterval = 30_000;
	/** Answer a message differently; return undefined to get the default answer, null for none. */
	answer: Answer | null = null;
	readonly Impl: WebSocketFactory;

	constructor() {
		// eslint-disable-next-line @typescript-eslint/no-this-alias
		const bridge = this;
		this.Impl = class extends FakeSocket {
			constructor(url: string) {
				super(bridge, url);
			}
		};
	}

	defaultAnswer(message: Message): Record<string, unknown>[] | null {
		switch (message.type) {
			case 'authenticate':
				return [
					{
						...base(),
						type: 'session_created',
						session_id: `ses_${this.sockets.length}`,
						request_id: message.id,
						user: { id: 'u1', name: 'mira', display_name: 'Mira' },
						capabilities: {},
						heartbeat_interval: this.heartbeatInterval,
						protocol_version: '1.0.0'
					}
				];
			case 'session_create':
			case 'session_attach':
				return [
					{
						...base(),
						type: 'campaign_snapshot',
						request_id: message.id,
						data: {
							campaign_id: message['campaign_id'],
							role: 'player',
							epoch: 'ep',
							seq: 0,
							recovered: message.type === 'session_attach',
							...(message.type === 'session_create'
								? {
										state: {
											initiative_order: [],
											active_turn: 0,
											round_number: 1,
											shared_notes: '',
											custom: {},
											version: 0,
											last_update: 'now',
											dice_rolls: []
										},
										canvas: []
									}
								: {}),
							participants: []
						}
					}
				];
			case 'cursor_move':
			case 'presence_update':
			case 'disconnect':
				return null;
			default:
				return [{ ...base(), type: 'ack', request_id: message.id }];
		}
	}
}

export class FakeSocket implements WebSocketLike {
	readyState = 0;
	onopen: ((event: unknown) => void) | null = null;
	onmessage: ((event: { data: unknown }) => void) | null = null;
	onclose: ((event: { code: number; reason: string }) => void) | null = null;
	onerror: ((event: unknown) => void) | null = null;

	constructor(
		private readonly bridge: FakeBridge,
		readonly url: string
	) {
		bridge.sockets.push(this);
		setTimeout(() => {
			if (bridge.refuse > 0) {
				bridge.refuse -= 1;
				this.readyState = 3;
				this.onclose?.({ code: 1006, reason: '' });
				return;
			}
			this.readyState = 1;
			this.onopen?.({});
		}, 0);
	}

	send(data: string): void {
		const parsed = JSON.parse(data) as Message | Message[];
		for (const message of Array.isArray(parsed) ? parsed : [parsed]) {
			this.bridge.received.push(message);
			const custom = this.bridge.answer?.(message, this);
			const replies = custom === undefined ? this.bridge.defaultAnswer(message) : custom;
			for (const reply of replies ?? []) this.deliver(reply);
		}
	}

	/** A message from the bridge, delivered on a later tick like a real socket would. */
	deliver(message: Record<string, unknown>): void {
		setTimeout(() => {
			if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(message) });
		}, 0);
	}

	close(code = 1000, reason = ''): void {
		if (this.readyState === 3) return;
		this.readyState = 3;
		setTimeout(() => this.onclose?.({ code, reason }), 0);
	}

	/** The bridge closes the connection. */
	serverClose(code: number, reason: string): void {
		this.close(code, reason);
	}
}
