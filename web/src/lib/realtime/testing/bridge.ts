/**
 * Helpers for tests against a real bridge: accounts, a campaign with seats, clients wired to
 * `ws` (Node 20 has no WebSocket), sockets the test can cut, and bounded waits.
 */
import Ajv2020 from 'ajv/dist/2020';
import WebSocket from 'ws';
import { TTRPGWebSocketClient, type TTRPGClientConfig } from '../client';
import { AuthSession, BridgeApi } from '../http';
import type { Role } from '../messages';
import type { WebSocketFactory, WebSocketLike } from '../transport';

let counter = 0;

/** A name no other test of this run uses. */
export function uniqueName(prefix: string): string {
	counter += 1;
	return `${prefix}${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
}

export async function newAccount(api: BridgeApi, prefix = 'user'): Promise<AuthSession> {
	const name = uniqueName(prefix);
	return AuthSession.register(api, { username: name, password: 'correct horse battery staple', display_name: name });
}

export interface Table {
	api: BridgeApi;
	campaignId: string;
	gm: AuthSession;
	seats: AuthSession[];
}

/** A campaign run by a new GM, with `players` new accounts seated by invite codes. */
export async function newTable(baseUrl: string, players = 1, role: Role = 'player'): Promise<Table> {
	const api = new BridgeApi({ baseUrl });
	const gm = await newAccount(api, 'gm');
	const campaign = await gm.createCampaign({ name: uniqueName('Campaign '), system: 'test' });
	const seats: AuthSession[] = [];
	for (let i = 0; i < players; i += 1) {
		const seat = await newAccount(api, 'pc');
		const invite = await gm.createInvite(campaign.id, { role });
		await seat.joinByCode(invite.code);
		seats.push(seat);
	}
	return { api, campaignId: campaign.id, gm, seats };
}

/**
 * A `ws` WebSocket the test controls: `cut()` drops it like a network failure (no close
 * handshake), and `swallow` drops chosen incoming messages and then cuts the socket.
 */
export class ControlledSocket implements WebSocketLike {
	onopen: ((event: unknown) => void) | null = null;
	onmessage: ((event: { data: unknown }) => void) | null = null;
	onclose: ((event: { code: number; reason: string }) => void) | null = null;
	onerror: ((event: unknown) => void) | null = null;
	readonly inner: WebSocket;
	swallow: ((text: string) => boolean) | null = null;
	readonly sent: string[] = [];

	constructor(url: string, protocols?: string | string[]) {
		this.inner = new WebSocket(url, protocols);
		this.inner.onopen = (event) => this.onopen?.(event);
		this.inner.onmessage = (event) => {
			const text = typeof event.data === 'string' ? event.data : event.data.toString();
			if (this.swallow?.(text)) {
				this.swallow = null;
				this.cut();
				return;
			}
			this.onmessage?.({ data: text });
		};
		this.inner.onclose = (event) => this.onclose?.({ code: event.code, reason: event.reason });
		this.inner.onerror = (event) => this.onerror?.(event);
	}

	get readyState(): number {
		return this.inner.readyState;
	}

	send(data: string): void {
		this.sent.push(data);
		this.inner.send(data);
	}

	close(code?: number, reason?: string): void {
		this.inner.close(code, reason);
	}

	/** Drop the connection abruptly, as a dead network does. */
	cut(): void {
		this.inner.terminate();
	}
}

export interface SocketControl {
	Impl: WebSocketFactory;
	sockets: ControlledSocket[];
	/** While true, new sockets go to a port nobody listens on (the network is down). */
	blocked: boolean;
	current(): ControlledSocket;
}

/** A WebSocket factory that remembers every socket it made, newest last, and can refuse new ones. */
export function controlledSockets(): SocketControl {
	const control: SocketControl = {
		Impl: undefined as unknown as WebSocketFactory,
		sockets: [],
		blocked: false,
		current() {
			const socket = control.sockets.at(-1);
			if (socket === undefined) throw new Error('no socket yet');
			return socket;
		}
	};
	class Tracked extends ControlledSocket {
		constructor(url: string, protocols?: string | string[]) {
			super(control.blocked ? 'ws://127.0.0.1:9/ws' : url, protocols);
			control.sockets.push(this);
		}
	}
	control.Impl = Tracked;
	return control;
}

/** Every message the bridge sent to any seat client of this test file, for the schema check. */
export const received: unknown[] = [];

/** A client for one seat, on `ws`, with quick reconnects (tests wait on conditions, not time). */
export function seatClient(
	baseUrl: string,
	auth: AuthSession,
	campaignId: string | null,
	extra: Partial<TTRPGClientConfig> = {}
): TTRPGWebSocketClient {
	return new TTRPGWebSocketClient({
		baseUrl,
		auth,
		campaignId,
		WebSocketImpl: WebSocket as unknown as WebSocketFactory,
		backoff: { initialMs: 50, maxMs: 500 },
		...extra,
		onMessage: (message) => {
			received.push(message);
			extra.onMessage?.(message);
		}
	});
}

const POLL_MS = 20;

/**
 * Wait until `condition` holds, polling at most `polls` times (a bound by count, so a loaded
 * machine slows the test down instead of failing it on a wall-clock threshold).
 */
export async function until(condition: () => boolean, what: string, polls = 1500): Promise<void> {
	for (let i = 0; i < polls; i += 1) {
		if (condition()) return;
		await new Promise((done) => setTimeout(done, POLL_MS));
	}
	throw new Error(`timed out waiting for: ${what}`);
}

/**
 * Each kind of mismatch between what the seats of this file received and the bridge's server
 * schema, one line per kind (message type, where, what); empty when everything fits.
 */
export function schemaMisfits(serverSchema: Record<string, unknown>): string[] {
	// Pydantic's discriminators carry a `mapping` that Ajv does not read; the consts suffice.
	const withoutMapping = (node: unknown): unknown => {
		if (Array.isArray(node)) return node.map(withoutMapping);
		if (node === null || typeof node !== 'object') return node;
		return Object.fromEntries(
			Object.entries(node).map(([key, value]) =>
				key === 'discriminator'
					? [key, { propertyName: (value as { propertyName: string }).propertyName }]
					: [key, withoutMapping(value)]
			)
		);
	};
	const validate = new Ajv2020({ strict: false, discriminator: true }).compile(
		withoutMapping(serverSchema) as Record<string, unknown>
	);
	const kinds = new Set<string>();
	for (const message of received) {
		if (validate(message)) continue;
		const type = (message as { type?: unknown }).type;
		for (const error of validate.errors ?? []) {
			kinds.add(`${String(type)} ${error.instancePath} ${error.message ?? ''} ${JSON.stringify(error.params)}`);
		}
	}
	return [...kinds];
}
