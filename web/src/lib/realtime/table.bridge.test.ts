/** The table's parts through the client against a real bridge: hidden things, conflicts, canvas, cursors, HTTP. */
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { TTRPGWebSocketClient } from './client';
import { AuthSession, BridgeApi, BridgeApiError } from './http';
import { RealtimeError } from './messages';
import { get } from './store';
import { newAccount, newTable, received, schemaMisfits, seatClient, until } from './testing/bridge';

const baseUrl = inject('bridgeUrl');
const clients: TTRPGWebSocketClient[] = [];

async function seated(table: Awaited<ReturnType<typeof newTable>>): Promise<[TTRPGWebSocketClient, TTRPGWebSocketClient]> {
	const gm = seatClient(baseUrl, table.gm, table.campaignId);
	const player = seatClient(baseUrl, table.seats[0]!, table.campaignId);
	clients.push(gm, player);
	await Promise.all([gm.connect(), player.connect()]);
	return [gm, player];
}

afterEach(() => {
	for (const client of clients.splice(0)) client.disconnect('test over');
});

describe('hidden things stay hidden', () => {
	it('shows a blind roll to the GM and only its making to the player who rolled', async () => {
		const [gm, player] = await seated(await newTable(baseUrl, 1));
		const result = await player.rollDice('1d20', 'sneak', { visibility: 'blind' });
		expect('hidden' in result).toBe(true);

		await until(() => get(gm.rolls).some((roll) => roll.purpose === 'sneak'), 'the GM sees the blind roll');
		const gmView = get(gm.rolls).find((roll) => roll.purpose === 'sneak')!;
		expect(gmView.hidden).toBe(false);
		expect(gmView.total).toBeGreaterThanOrEqual(1);
		await until(() => get(player.rolls).some((roll) => roll.hidden && roll.seq !== null), 'the player sees it numbered');
		const own = get(player.rolls).filter((roll) => roll.mine);
		expect(own).toHaveLength(1);
		expect(own[0]).toMatchObject({ hidden: true, total: null, pending: false });
	});

	it('keeps a hidden combatant masked for players while the GM runs the turn order', async () => {
		const [gm, player] = await seated(await newTable(baseUrl, 1));
		await gm.updateInitiative([
			{ name: 'Mira', initiative: 15, hp: 18, max_hp: 18 },
			{ name: 'Lurker', initiative: 18, hp: 30, max_hp: 30, hidden: true }
		]);
		await gm.updateInitiative({ action: 'next' });

		await until(() => get(player.initiative).activeTurn === 1, 'the player sees the turn move');
		const seen = get(player.initiative);
		expect(seen.order.map((c) => c.name)).toEqual(['Hidden combatant', 'Mira']);
		expect(seen.order[0]).toEqual({ id: expect.any(String), name: 'Hidden combatant', hidden: true });
		expect(seen.current?.name).toBe('Mira');
		expect(get(gm.initiative).order.map((c) => c.name)).toEqual(['Lurker', 'Mira']);

		const refused = await player.updateInitiative({ action: 'next' }).catch((error: unknown) => error);
		expect((refused as RealtimeError).code).toBe('forbidden');
		expect(get(player.errors).at(-1)).toMatchObject({ type: 'initiative_update', code: 'forbidden' });
	});
});

describe('shared notes, canvas and cursors', () => {
	it('refuses notes written over a newer version, with the version to merge from', async () => {
		const [gm, player] = await seated(await newTable(baseUrl, 1));
		const base = get(player.sharedState).version;
		const ack = await gm.setSharedNotes('The ferryman wants two silver.', base);
		const refused = await player.setSharedNotes('The ferryman is asleep.', base).catch((error: unknown) => error);
		expect(refused).toBeInstanceOf(RealtimeError);
		expect((refused as RealtimeError).code).toBe('conflict');
		expect((refused as RealtimeError).data?.['current_version']).toBe(ack.version);
		expect(get(player.errors).at(-1)).toMatchObject({ type: 'state_update', code: 'conflict' });
		await until(() => get(player.sharedState).version === ack.version, 'the player gets the GM notes');
		expect(get(player.sharedState).shared_notes).toBe('The ferryman wants two silver.');
		// Based on what they now see, the player's edit goes through.
		await player.setSharedNotes('The ferryman wants two silver. Mira pays.');
	});

	it('shares strokes and their erasing, and cursors by user', async () => {
		const [gm, player] = await seated(await newTable(baseUrl, 1));
		const ack = await player.draw({ tool: 'pen', points: [[10, 10], [42, 17]], color: '#aa3300', width: 3, layer: 'map' });
		expect(ack.stroke_id).toMatch(/^stk_/);
		await until(() => get(gm.canvas).some((stroke) => stroke.id === ack.stroke_id), 'the GM sees the stroke');
		expect(get(gm.canvas).find((stroke) => stroke.id === ack.stroke_id)?.user_id).toBe(player.currentUser?.id);

		await player.erase(ack.stroke_id!);
		await until(() => get(gm.canvas).length === 0, 'the GM sees it erased');

		player.moveCursor(120, 80, 'map');
		const me = player.currentUser!.id;
		await until(() => get(gm.cursors).get(me)?.x === 120, 'the GM sees the cursor');
		expect(get(gm.cursors).get(me)).toMatchObject({ y: 80, element: 'map' });
	});
});

describe('accounts and campaigns over HTTP', () => {
	it('logs in, rotates the refresh token and logs out', async () => {
		const api = new BridgeApi({ baseUrl });
		const registered = await newAccount(api, 'acct');
		const session = await AuthSession.login(api, registered.user.name, 'correct horse battery staple');
		expect(session.user.id).toBe(registered.user.id);
		const spent = session.refreshToken;
		const changes: unknown[] = [];
		session.onChange((pair) => changes.push(pair));
		await Promise.all([session.refresh(), session.refresh()]);
		expect(changes).toHaveLength(1);
		expect((await api.me(session.accessToken())).id).toBe(session.user.id);
		// A spent refresh token used again is refused, and revokes the whole family.
		const reused = await api.refresh(spent).catch((error: unknown) => error);
		expect(reused).toBeInstanceOf(BridgeApiError);
		expect((reused as BridgeApiError).status).toBe(401);
		const family = await session.refresh().catch((error: unknown) => error);
		expect((family as BridgeApiError).status).toBe(401);

		const again = await AuthSession.login(api, registered.user.name, 'correct horse battery staple');
		await again.logout();
		const after = await api.refresh(again.refreshToken).catch((error: unknown) => error);
		expect((after as BridgeApiError).status).toBe(401);
		const wrong = await AuthSession.login(api, registered.user.name, 'wrong password').catch((error: unknown) => error);
		expect((wrong as BridgeApiError).code).toBe('invalid_credentials');
	});

	it('lists campaigns and members, and a role change or removal reaches the live table', async () => {
		const table = await newTable(baseUrl, 1);
		const [, player] = await seated(table);
		const seat = table.seats[0]!;
		expect((await seat.listCampaigns()).find((c) => c.id === table.campaignId)?.role).toBe('player');
		const detail = await table.gm.getCampaign(table.campaignId);
		expect(detail.members.map((m) => m.role).sort()).toEqual(['gm', 'player']);

		await table.gm.changeRole(table.campaignId, seat.user.id, 'spectator');
		await until(() => get(player.status).role === 'spectator', 'the player becomes a spectator');
		const refused = await player.rollDice('1d6').catch((error: unknown) => error);
		expect((refused as RealtimeError).code).toBe('forbidden');

		await table.gm.removeMember(table.campaignId, seat.user.id);
		await until(() => get(player.status).error?.code === 'forbidden', 'the player is told they were removed');
		expect((await seat.listCampaigns()).some((c) => c.id === table.campaignId)).toBe(false);
		const notMember = await seat.getCampaign(table.campaignId).catch((error: unknown) => error);
		expect((notMember as BridgeApiError).status).toBeGreaterThanOrEqual(403);
	});
});

describe('the lobby', () => {
	it('rolls without a table, then sits at one, and is refused one it is not a member of', async () => {
		const table = await newTable(baseUrl, 1);
		const stranger = await newTable(baseUrl, 0);
		const client = seatClient(baseUrl, table.seats[0]!, null);
		clients.push(client);
		await client.connect();
		const lobbyRoll = await client.rollDice('1d6', 'in the lobby');
		expect('total' in lobbyRoll).toBe(true);
		expect(get(client.rolls).find((roll) => roll.purpose === 'in the lobby')).toMatchObject({ pending: false, seq: null });

		const snapshot = await client.joinCampaign(table.campaignId);
		expect(snapshot.role).toBe('player');
		expect(get(client.status).campaignId).toBe(table.campaignId);
		await client.rollDice('1d6', 'at the table');
		await until(() => get(client.rolls).some((roll) => roll.purpose === 'at the table' && roll.seq !== null), 'numbered');

		const refused = await client.joinCampaign(stranger.campaignId).catch((error: unknown) => error);
		expect(refused).toBeInstanceOf(RealtimeError);
		expect(['forbidden', 'not_found']).toContain((refused as RealtimeError).code);
	});
});

describe('what the bridge sent', () => {
	it('fits the server schema the client types are generated from, message by message', () => {
		expect(received.length).toBeGreaterThan(0);
		expect(schemaMisfits(inject('serverSchema'))).toEqual([]);
	});
});
