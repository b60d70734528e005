/** The realtime client against a real bridge: seats, rolls, drops, resends, order, SSE, tokens. */
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { TTRPGWebSocketClient } from './client';
import { get } from './store';
import { controlledSockets, newTable, seatClient, until } from './testing/bridge';

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
});
