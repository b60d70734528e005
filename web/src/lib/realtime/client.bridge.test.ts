/** The realtime client against a real bridge: seats, rolls, drops, resends, order, SSE, tokens. */
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { TTRPGWebSocketClient } from './client';
import { get } from './store';
import { controlledSockets, newTable, received, schemaMisfits, seatClient, until } from './testing/bridge';
import { tokenTimes } from './tokens';

const baseUrl = inject('bridgeUrl');
const clients: TTRPGWebSocketClient[] = [];

function track(client: TTRPGWebSocketClient): TTRPGWebSocketClient {
	clients.push(client);
	return client;
}

afterEach(() => {
	for (const client of clients.splice(0)) client.disconnect('test over');
});

describe('a table over WebSocket', () => {
	it('shows a roll to another seat, and to the roller with every die', async () => {
		const table = await newTable(baseUrl, 1);
		const gm = track(seatClient(baseUrl, table.gm, table.campaignId));
		const player = track(seatClient(baseUrl, table.seats[0]!, table.campaignId));
		await Promise.all([gm.connect(), player.connect()]);
		expect(get(gm.status).role).toBe('gm');
		expect(get(player.status).role).toBe('player');

		const result = await gm.rollDice('2d20kh1+5', 'attack');
		expect('hidden' in result).toBe(false);

		await until(() => get(player.rolls).some((roll) => roll.purpose === 'attack'), 'the roll reaches the player');
		const seen = get(player.rolls).find((roll) => roll.purpose === 'attack')!;
		const own = get(gm.rolls).find((roll) => roll.purpose === 'attack')!;
		expect(seen.total).toBe(own.total);
		expect(seen.seq).not.toBeNull();
		expect(own.pending).toBe(false);
		expect(own.mine).toBe(true);
		expect(own.dice).toHaveLength(2);
		expect(own.dice.filter((die) => die.dropped)).toHaveLength(1);
		// Another seat learns the dice from the event: the dropped one is marked too.
		expect(seen.dice.map((die) => die.dropped).sort()).toEqual([false, true]);
		expect(get(player.participants).size).toBe(2);
	});

	it('replays what a dropped seat missed, once each, in order', async () => {
		const table = await newTable(baseUrl, 1);
		const sockets = controlledSockets();
		const watcher = track(
			seatClient(baseUrl, table.seats[0]!, table.campaignId, { WebSocketImpl: sockets.Impl, transport: 'websocket' })
		);
		const gm = track(seatClient(baseUrl, table.gm, table.campaignId));
		await Promise.all([watcher.connect(), gm.connect()]);
		const resetsBefore = watcher.stats.resets;

		sockets.blocked = true;
		sockets.current().cut();
		await until(() => get(watcher.status).state === 'reconnecting', 'the watcher notices the drop');
		for (let i = 0; i < 5; i += 1) await gm.rollDice('1d6', `missed ${i}`);
		sockets.blocked = false;

		await until(() => watcher.position.lastSeq === gm.position.lastSeq, 'the watcher catches up');
		expect(get(watcher.status).state).toBe('authenticated');
		const missed = get(watcher.rolls).filter((roll) => roll.purpose?.startsWith('missed'));
		expect(missed.map((roll) => roll.purpose)).toEqual([0, 1, 2, 3, 4].map((i) => `missed ${i}`));
		const seqs = missed.map((roll) => roll.seq!);
		expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
		expect(new Set(seqs).size).toBe(5);
		// Resumed, not reset: the bridge replayed exactly the missed events.
		expect(watcher.stats.resets).toBe(resetsBefore);
		expect(watcher.stats.replayed).toBeGreaterThanOrEqual(5);
		expect(watcher.stats.gaps).toBe(0);
	});

	it('resends a change whose reply was lost with the same id, and the bridge applies it once', async () => {
		const table = await newTable(baseUrl, 1);
		const sockets = controlledSockets();
		const writer = track(seatClient(baseUrl, table.seats[0]!, table.campaignId, { WebSocketImpl: sockets.Impl }));
		const changes: unknown[] = [];
		const observer = track(
			seatClient(baseUrl, table.gm, table.campaignId, {
				onMessage: (message) => {
					if (message.type === 'state_update' && message.data.path.join('.') === 'custom.door') {
						changes.push(message.data.value);
					}
				}
			})
		);
		await Promise.all([writer.connect(), observer.connect()]);
		const versionBefore = get(observer.sharedState).version;

		// The bridge applies the change and answers; the answer is lost with the connection.
		sockets.current().swallow = (text) => JSON.parse(text).type === 'ack';
		const ack = await writer.updateState(['custom', 'door'], 'set', 'open');

		expect(writer.stats.duplicateReplies).toBe(1);
		expect(writer.stats.resent).toBe(1);
		const sentIds = sockets.sockets
			.flatMap((socket) => socket.sent.map((text) => JSON.parse(text) as { id: string; type: string }))
			.filter((message) => message.type === 'state_update')
			.map((message) => message.id);
		expect(sentIds).toHaveLength(2);
		expect(sentIds[0]).toBe(sentIds[1]);
		await until(() => get(observer.sharedState).version === ack.version, 'the observer sees the change');
		expect(ack.version).toBe(versionBefore + 1);
		expect(changes).toEqual(['open']);
		expect(get(writer.status).pending).toBe(0);
	});

	it('does not roll the dice again when a roll is resent', async () => {
		const table = await newTable(baseUrl, 1);
		const sockets = controlledSockets();
		const roller = track(seatClient(baseUrl, table.seats[0]!, table.campaignId, { WebSocketImpl: sockets.Impl }));
		const gm = track(seatClient(baseUrl, table.gm, table.campaignId));
		await Promise.all([roller.connect(), gm.connect()]);

		sockets.current().swallow = (text) => JSON.parse(text).type === 'dice_roll_result';
		const result = await roller.rollDice('1d1000', 'once');

		expect(roller.stats.duplicateReplies).toBe(1);
		await until(() => get(gm.rolls).some((roll) => roll.purpose === 'once'), 'the GM sees the roll');
		const seen = get(gm.rolls).filter((roll) => roll.purpose === 'once');
		expect(seen).toHaveLength(1);
		expect('total' in result && result.total).toBe(seen[0]!.total);
		const mine = get(roller.rolls).filter((roll) => roll.purpose === 'once');
		expect(mine).toHaveLength(1);
		expect(mine[0]!.pending).toBe(false);
	});

	it('applies 50 changes in the order they were made, across a drop in the middle', async () => {
		const table = await newTable(baseUrl, 1);
		const sockets = controlledSockets();
		const writer = track(seatClient(baseUrl, table.seats[0]!, table.campaignId, { WebSocketImpl: sockets.Impl }));
		const values: unknown[] = [];
		const observer = track(
			seatClient(baseUrl, table.gm, table.campaignId, {
				onMessage: (message) => {
					if (message.type === 'state_update' && message.data.path.join('.') === 'custom.step') {
						values.push(message.data.value);
					}
				}
			})
		);
		await Promise.all([writer.connect(), observer.connect()]);

		const acks: Promise<{ seq?: number | null }>[] = [];
		for (let i = 0; i < 50; i += 1) {
			if (i === 25) {
				sockets.current().cut();
				await until(() => get(writer.status).state !== 'authenticated', 'the writer notices the drop');
				expect(get(writer.status).pending).toBeGreaterThan(0);
			}
			acks.push(writer.updateState(['custom', 'step'], 'set', i));
		}
		const seqs = (await Promise.all(acks)).map((ack) => ack.seq!);

		await until(() => values.length >= 50, 'the observer sees every change');
		expect(values).toEqual([...Array(50).keys()]);
		expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
		expect(new Set(seqs).size).toBe(50);
		expect(get(observer.sharedState).custom['step']).toBe(49);
		expect(get(writer.status).pending).toBe(0);
	});
});

describe('fallbacks and tokens', () => {
	it('falls back to SSE when the WebSocket is refused, and plays on', async () => {
		const table = await newTable(baseUrl, 1);
		const sse = track(seatClient(baseUrl, table.seats[0]!, table.campaignId, { wsUrl: 'ws://127.0.0.1:9/ws' }));
		const gm = track(seatClient(baseUrl, table.gm, table.campaignId));
		await Promise.all([sse.connect(), gm.connect()]);
		expect(get(sse.status).transport).toBe('sse');
		expect(sse.stats.sseFallbacks).toBe(1);
		expect(get(sse.status).role).toBe('player');

		await sse.rollDice('1d20', 'over sse');
		await gm.rollDice('1d8', 'to sse');
		await until(() => get(gm.rolls).some((roll) => roll.purpose === 'over sse'), 'the GM sees the SSE roll');
		await until(() => get(sse.rolls).some((roll) => roll.purpose === 'to sse'), 'the SSE seat sees the GM roll');
		const ack = await sse.setSharedNotes('written over SSE');
		await until(() => get(gm.sharedState).version === ack.version, 'the GM sees the notes');
		expect(get(gm.sharedState).shared_notes).toBe('written over SSE');
	});

	it('moves back to the WebSocket when it works again, missing and doubling no event', async () => {
		const table = await newTable(baseUrl, 1);
		const sockets = controlledSockets();
		sockets.blocked = true; // the network refuses WebSockets: the seat falls back to SSE
		const seat = track(
			seatClient(baseUrl, table.seats[0]!, table.campaignId, {
				WebSocketImpl: sockets.Impl,
				probeBackoff: { initialMs: 50, maxMs: 200 }
			})
		);
		const gm = track(seatClient(baseUrl, table.gm, table.campaignId));
		await Promise.all([seat.connect(), gm.connect()]);
		expect(get(seat.status).transport).toBe('sse');
		expect(seat.stats.sseFallbacks).toBe(1);
		for (let i = 0; i < 3; i += 1) await gm.rollDice('1d6', `before ${i}`);
		await until(() => get(seat.rolls).some((roll) => roll.purpose === 'before 2'), 'the SSE seat sees the rolls');
		// Probes keep failing while the network is down; the seat stays on SSE.
		const probesWhileDown = sockets.sockets.length;
		await until(() => sockets.sockets.length >= probesWhileDown + 2, 'the seat keeps probing');
		expect(get(seat.status).transport).toBe('sse');

		sockets.blocked = false;
		// Rolls keep coming while the seat moves over; its own roll is made in the middle of it.
		const rolling = (async () => {
			for (let i = 0; i < 10; i += 1) await gm.rollDice('1d6', `during ${i}`);
		})();
		await until(() => get(seat.status).transport === 'websocket', 'the seat moves back to the WebSocket');
		const mine = await seat.rollDice('1d4', 'after the move');
		await rolling;
		await until(() => seat.position.lastSeq === gm.position.lastSeq, 'the seat catches up');
		expect(get(seat.status).state).toBe('authenticated');
		expect(seat.stats.websocketReturns).toBe(1);
		expect(seat.stats.gaps).toBe(0);

		const purposes = get(seat.rolls).map((roll) => roll.purpose);
		const expected = [0, 1, 2].map((i) => `before ${i}`).concat([...Array(10).keys()].map((i) => `during ${i}`));
		for (const purpose of expected) expect(purposes.filter((p) => p === purpose)).toHaveLength(1);
		const seqs = get(seat.rolls).map((roll) => roll.seq!);
		expect(new Set(seqs).size).toBe(seqs.length);
		expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
		await until(() => get(gm.rolls).some((roll) => roll.purpose === 'after the move'), 'the GM sees the new roll');
		expect(get(gm.rolls).filter((roll) => roll.purpose === 'after the move')).toHaveLength(1);
		expect('hidden' in mine).toBe(false);
	});

	it('resumes an SSE stream from the last seq after it drops', async () => {
		const table = await newTable(baseUrl, 1);
		// The network as the SSE seat sees it: while offline, no stream can open.
		let offline = false;
		let streamsOpenedOnline = 0;
		const gatedFetch: typeof fetch = (input, init) => {
			if (String(input).includes('/api/events')) {
				if (offline) return Promise.reject(new TypeError('network is down'));
				streamsOpenedOnline += 1;
			}
			return fetch(input, init);
		};
		const sse = track(seatClient(baseUrl, table.seats[0]!, table.campaignId, { transport: 'sse', fetch: gatedFetch }));
		const gm = track(seatClient(baseUrl, table.gm, table.campaignId));
		await Promise.all([sse.connect(), gm.connect()]);
		const resetsBefore = sse.stats.resets;

		offline = true;
		streamsOpenedOnline = 0;
		(sse as unknown as { drop(reason: string): void }).drop('test drops the stream');
		for (let i = 0; i < 3; i += 1) await gm.rollDice('1d4', `while away ${i}`);
		offline = false;

		await until(() => sse.position.lastSeq === gm.position.lastSeq, 'the SSE seat catches up');
		const seen = get(sse.rolls).filter((roll) => roll.purpose?.startsWith('while away'));
		expect(seen.map((roll) => roll.purpose)).toEqual([0, 1, 2].map((i) => `while away ${i}`));
		expect(sse.stats.resets).toBe(resetsBefore);
		expect(sse.stats.replayed).toBeGreaterThanOrEqual(3);
		expect(sse.stats.gaps).toBe(0);
		// The resumed stream was taken as it came (snapshot first, then the replay), not dropped again.
		expect(streamsOpenedOnline).toBe(1);
	});

	it('renews the access token before it expires and swaps it with reauthenticate', async () => {
		const ttl = inject('accessTokenTtl');
		const table = await newTable(baseUrl, 1);
		const seat = table.seats[0]!;
		const client = track(
			// Renew two seconds into the token's life.
			seatClient(baseUrl, seat, table.campaignId, { renewBeforeMs: (ttl - 2) * 1000 })
		);
		await client.connect();
		const first = seat.accessToken();
		await until(() => client.stats.renewals >= 1, 'the token is renewed');
		expect(seat.accessToken()).not.toBe(first);
		expect(tokenTimes(seat.accessToken()).expiresAt!).toBeGreaterThan(tokenTimes(first).expiresAt!);
		const result = await client.rollDice('1d6', 'after renewal');
		expect('total' in result).toBe(true);
		expect(get(client.status).state).toBe('authenticated');
	});
});

describe('what the bridge sent', () => {
	it('fits the server schema the client types are generated from, message by message', () => {
		expect(received.length).toBeGreaterThan(0);
		expect(schemaMisfits(inject('serverSchema'))).toEqual([]);
	});
});
