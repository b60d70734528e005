/** The client's own logic against an in-memory bridge: ordering, waits, timeouts, drops, tokens. */
import { afterEach, describe, expect, it } from 'vitest';
import { TTRPGWebSocketClient, type TTRPGClientConfig } from './client';
import { RealtimeError } from './messages';
import { get } from './store';
import { FakeBridge, type Message } from './testing/fake-bridge';
import { until } from './testing/bridge';

const clients: TTRPGWebSocketClient[] = [];

function client(bridge: FakeBridge, extra: Partial<TTRPGClientConfig> = {}): TTRPGWebSocketClient {
	const made = new TTRPGWebSocketClient({
		baseUrl: 'http://bridge.test',
		auth: 'token',
		campaignId: 'camp',
		WebSocketImpl: bridge.Impl,
		backoff: { initialMs: 5, maxMs: 20 },
		...extra
	});
	clients.push(made);
	return made;
}

afterEach(() => {
	for (const made of clients.splice(0)) made.disconnect();
});

const sent = (bridge: FakeBridge, type: string) => bridge.received.filter((message) => message.type === type);

describe('the client against an in-memory bridge', () => {
	it('waits out rate_limited and sends the change again with the same id, before the ones after it', async () => {
		const bridge = new FakeBridge();
		let refused = false;
		bridge.answer = (message) => {
			if (message.type === 'state_update' && message['data'] && (message['data'] as { value: unknown }).value === 'a' && !refused) {
				refused = true;
				return [
					{
						id: 'r',
						timestamp: 0,
						version: '1.0.0',
						type: 'error',
						request_id: message.id,
						error: { code: 'rate_limited', message: 'slow down', data: { retry_after: 0.02 } }
					}
				];
			}
			return undefined;
		};
		const table = client(bridge);
		await table.connect();
		await Promise.all(['a', 'b', 'c'].map((value) => table.updateState(['custom', 'x'], 'set', value)));
		const updates = sent(bridge, 'state_update') as (Message & { data: { value: string } })[];
		expect(updates.map((message) => message.data.value)).toEqual(['a', 'a', 'b', 'c']);
		expect(updates[0]!.id).toBe(updates[1]!.id);
		expect(table.stats.resent).toBe(1);
	});

	it('sends changes one frame at a time, batching those that queued up', async () => {
		const bridge = new FakeBridge();
		const frames: number[] = [];
		const table = client(bridge);
		await table.connect();
		const socket = bridge.sockets.at(-1)!;
		const send = socket.send.bind(socket);
		socket.send = (data: string) => {
			const parsed: unknown = JSON.parse(data);
			if (Array.isArray(parsed) || (parsed as Message).type === 'state_update') {
				frames.push(Array.isArray(parsed) ? parsed.length : 1);
			}
			send(data);
		};
		await Promise.all(Array.from({ length: 25 }, (_, i) => table.updateState(['custom', 'n'], 'set', i)));
		expect(frames).toEqual([1, 10, 10, 4]);
	});

	it('fails a request that gets no reply in time, and says so in errors', async () => {
		const bridge = new FakeBridge();
		bridge.answer = (message) => (message.type === 'tool_call' ? null : undefined);
		const table = client(bridge, { requestTimeoutMs: 30 });
		await table.connect();
		const failure = await table.callTool('search', { query: 'x' }).catch((error: unknown) => error);
		expect(failure).toBeInstanceOf(RealtimeError);
		expect((failure as RealtimeError).code).toBe('timeout');
		expect(get(table.errors).at(-1)?.code).toBe('timeout');
		expect(get(table.status).pending).toBe(0);
	});

	it('keeps changes made offline and sends them once after the reconnect', async () => {
		const bridge = new FakeBridge();
		const table = client(bridge, { transport: 'websocket' });
		await table.connect();
		bridge.refuse = 3;
		bridge.sockets.at(-1)!.serverClose(1006, 'gone');
		await until(() => get(table.status).state === 'reconnecting', 'the drop is seen');
		const change = table.updateState(['shared_notes'], 'set', 'offline edit');
		expect(get(table.status).pending).toBe(1);
		await change;
		expect(sent(bridge, 'state_update')).toHaveLength(1);
		expect(sent(bridge, 'session_attach')).toHaveLength(1);
		expect(get(table.status).state).toBe('authenticated');
	});

	it('asks for a batched replay and applies its events in order, each once, as if sent alone', async () => {
		const bridge = new FakeBridge();
		const seen: string[] = [];
		const change = (seq: number, value: string) => ({
			id: `e${seq}`,
			timestamp: 0,
			version: '1.0.0',
			type: 'state_update',
			scope: 'campaign',
			campaign_id: 'camp',
			seq,
			data: { path: ['shared_notes'], operation: 'set', value, version: seq, previous_version: seq - 1, last_update: 'now' }
		});
		bridge.answer = (message) => {
			if (message.type !== 'session_attach') return undefined;
			const [snapshot] = bridge.defaultAnswer(message)!;
			const batch = (seqs: number[]) => ({
				id: `b${seqs[0]}`,
				timestamp: 0,
				version: '1.0.0',
				type: 'event_batch',
				scope: 'campaign',
				campaign_id: 'camp',
				events: seqs.map((seq) => change(seq, `note ${seq}`))
			});
			const data = (snapshot as { data: Record<string, unknown> }).data;
			return [batch([1, 2]), batch([3]), { ...snapshot, data: { ...data, seq: 3, replayed: 3 } }];
		};
		const table = client(bridge, { transport: 'websocket', onMessage: (message) => seen.push(message.type) });
		await table.connect();
		bridge.sockets.at(-1)!.serverClose(1006, 'gone');
		await until(() => sent(bridge, 'session_attach').length === 1, 'the session is attached again');
		await until(() => get(table.status).state === 'authenticated', 'the replay is applied');
		expect(sent(bridge, 'session_attach')[0]!['batch']).toBe(true);
		expect(get(table.sharedState).shared_notes).toBe('note 3');
		expect(get(table.sharedState).version).toBe(3);
		expect(table.stats.replayed).toBe(3);
		expect(table.stats.duplicates).toBe(0);
		expect(table.stats.gaps).toBe(0);
		expect(seen.filter((type) => type === 'event_batch')).toHaveLength(0);
		expect(seen.filter((type) => type === 'state_update')).toHaveLength(3);
	});

	it('reconnects when the bridge goes silent for too long', async () => {
		const bridge = new FakeBridge();
		bridge.heartbeatInterval = 20;
		bridge.answer = (message) => (message.type === 'heartbeat' ? null : undefined);
		const table = client(bridge);
		await table.connect();
		await until(() => bridge.sockets.length >= 2, 'a new connection after the silence');
		expect(table.stats.reconnects).toBeGreaterThanOrEqual(1);
	});

	it('falls back to SSE after the WebSocket fails to open twice', async () => {
		const bridge = new FakeBridge();
		bridge.refuse = 2;
		const requests: string[] = [];
		const fetchStub = (async (input: URL | RequestInfo) => {
			requests.push(String(input));
			return new Response(JSON.stringify({ error: { code: 'invalid_token', message: 'no' } }), { status: 401 });
		}) as typeof fetch;
		const table = client(bridge, { fetch: fetchStub });
		const outcome = await table.connect().catch((error: unknown) => error);
		expect(table.stats.sseFallbacks).toBe(1);
		expect(requests[0]).toContain('/api/events?campaign_id=camp');
		// A refused token with no way to renew it ends in offline, with the reason.
		expect((outcome as RealtimeError).code).toBe('invalid_token');
		expect(get(table.status).state).toBe('offline');
	});

	it('renews a refused token once and reconnects', async () => {
		const bridge = new FakeBridge();
		let token = 'old';
		bridge.answer = (message, socket) => {
			if (message.type === 'authenticate' && message['token'] === 'old') {
				socket.serverClose(1008, 'token_expired: the token has expired');
				return null;
			}
			return undefined;
		};
		const table = client(bridge, {
			auth: {
				accessToken: () => token,
				refresh: async () => {
					token = 'new';
					return token;
				}
			}
		});
		await table.connect();
		expect(sent(bridge, 'authenticate').map((message) => message['token'])).toEqual(['old', 'new']);
	});

	it('rejects connect when the table refuses the join', async () => {
		const bridge = new FakeBridge();
		bridge.answer = (message) =>
			message.type === 'session_create'
				? [
						{
							id: 'e',
							timestamp: 0,
							version: '1.0.0',
							type: 'error',
							request_id: message.id,
							error: { code: 'forbidden', message: 'not a member', data: null }
						}
					]
				: undefined;
		const table = client(bridge);
		const outcome = await table.connect().catch((error: unknown) => error);
		expect((outcome as RealtimeError).code).toBe('forbidden');
		expect(get(table.status).error?.code).toBe('forbidden');
	});

	it('sends the presence again after a reconnect', async () => {
		const bridge = new FakeBridge();
		const table = client(bridge);
		await table.connect();
		table.setPresence({ status: 'away', character_name: 'Mira' });
		bridge.sockets.at(-1)!.serverClose(1006, 'gone');
		await until(() => sent(bridge, 'presence_update').length === 2, 'the presence is sent again');
		expect(sent(bridge, 'presence_update').at(-1)!['data']).toEqual({ status: 'away', character_name: 'Mira' });
	});
});
