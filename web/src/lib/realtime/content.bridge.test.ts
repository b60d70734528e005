/** The content store's change feed through the client against a real bridge: combat, content, tool rolls. */
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { TTRPGWebSocketClient } from './client';
import type { Server } from './messages';
import { get } from './store';
import { newTable, received, schemaMisfits, seatClient, until } from './testing/bridge';

const baseUrl = inject('bridgeUrl');
const clients: TTRPGWebSocketClient[] = [];

type Table = Awaited<ReturnType<typeof newTable>>;

async function seated(table: Table): Promise<[TTRPGWebSocketClient, TTRPGWebSocketClient]> {
	const gm = seatClient(baseUrl, table.gm, table.campaignId);
	const player = seatClient(baseUrl, table.seats[0]!, table.campaignId);
	clients.push(gm, player);
	await Promise.all([gm.connect(), player.connect()]);
	return [gm, player];
}

function structured(result: Record<string, unknown>): Record<string, unknown> {
	return (result['structuredContent'] as Record<string, unknown> | undefined) ?? {};
}

afterEach(() => {
	for (const client of clients.splice(0)) client.disconnect('test over');
});

describe('one initiative tracker: the combat', () => {
	it('follows combat_update, rolls a modifier, and a late seat gets the combat in its snapshot', async () => {
		const table = await newTable(baseUrl, 1);
		const [gm, player] = await seated(table);
		const started = await gm.updateInitiative([
			{ name: 'Mira', initiative: 15, hp: 18, max_hp: 18 },
			{ name: 'Scout', modifier: 3 },
			{ name: 'Lurker', initiative: 30, hp: 30, max_hp: 30, hidden: true }
		]);
		expect(started).toMatchObject({ play_session_id: expect.any(String), active_turn: 0, round_number: 1 });

		await until(() => get(player.initiative).order.length === 3, 'the player sees the order');
		const seen = get(player.initiative);
		expect(seen).toMatchObject({ sessionId: started.play_session_id, live: true, round: 1, activeTurn: 0 });
		expect(seen.order[0]).toEqual({ id: expect.any(String), name: 'Hidden combatant', hidden: true });
		expect(get(player.combat)?.session_id).toBe(started.play_session_id);
		// Mirrored for readers of the shared state.
		expect(get(player.sharedState).initiative_order).toBe(seen.order);

		await until(() => get(gm.initiative).order.length === 3, 'the GM sees the order');
		const scout = get(gm.initiative).order.find((c) => c.name === 'Scout') as Server.Combatant;
		expect(scout.modifier).toBe(3);
		expect(scout.initiative).toBeGreaterThanOrEqual(4);
		expect(scout.initiative).toBeLessThanOrEqual(23);

		const moved = await gm.updateInitiative({ action: 'next' });
		expect(moved).toMatchObject({ play_session_id: started.play_session_id, active_turn: 1, round_number: 1 });
		await until(() => get(player.initiative).activeTurn === 1, 'the player sees the turn move');
		expect(get(player.initiative).current?.name).toBe(get(gm.initiative).order[1]?.name);
		expect(get(player.activityFeed).some((entry) => entry.type === 'combat_update')).toBe(true);

		const late = seatClient(baseUrl, table.seats[0]!, table.campaignId);
		clients.push(late);
		await late.connect();
		expect(get(late.initiative)).toMatchObject({ sessionId: started.play_session_id, activeTurn: 1, live: true });
		expect(get(late.initiative).order.map((c) => c.name)).toEqual(get(player.initiative).order.map((c) => c.name));
	});
});

describe('campaign content from the change feed', () => {
	it('brings NPCs, campaign changes and the notes a player may read, never a GM-only note', async () => {
		const table = await newTable(baseUrl, 1);
		const [gm, player] = await seated(table);
		const npc = structured(await gm.callTool('create_npc', { campaign_id: table.campaignId, name: 'The Ferryman' }));
		await until(() => get(player.npcs).has(String(npc['id'])), 'the player sees the new NPC');
		expect(get(player.npcs).get(String(npc['id']))?.['name']).toBe('The Ferryman');

		await gm.updateCampaign({ setting: 'The Drowned Coast' });
		await until(() => get(player.campaign)?.['setting'] === 'The Drowned Coast', 'the player sees the setting');

		await gm.callTool('add_note', { campaign_id: table.campaignId, body: 'SECRET: the ferryman is the Lurker' });
		const shared = structured(
			await gm.callTool('add_note', {
				campaign_id: table.campaignId,
				body: 'The ferry leaves at dawn',
				visibility: 'players'
			})
		);
		// The shared note comes after the secret one: once it is here, the secret one has been passed over.
		await until(() => get(player.notes).has(String(shared['id'])), 'the player sees the shared note');
		expect([...get(player.notes).values()].map((note) => note['body'])).toEqual(['The ferry leaves at dawn']);
		await until(() => get(gm.notes).size === 2, 'the GM sees both notes');
	});
});

describe('rolls made with the dice tool', () => {
	it("shows a player's tool roll to everyone, and a GM's (GM-only by default) as hidden to players", async () => {
		const [gm, player] = await seated(await newTable(baseUrl, 1));
		const rolled = structured(await player.callTool('roll_dice', { expression: '1d6', purpose: 'luck' }));
		for (const seat of [gm, player]) {
			await until(() => get(seat.rolls).some((roll) => roll.purpose === 'luck'), 'the tool roll reaches the seat');
			const entry = get(seat.rolls).find((roll) => roll.purpose === 'luck')!;
			expect(entry).toMatchObject({ source: 'tool', total: rolled['total'], pending: false, hidden: false });
		}
		expect(get(player.rolls).find((roll) => roll.purpose === 'luck')?.mine).toBe(true);

		const secret = structured(await gm.callTool('roll_dice', { expression: '1d20+2', purpose: 'ambush' }));
		await until(() => get(gm.rolls).some((roll) => roll.purpose === 'ambush'), 'the GM sees the tool roll');
		expect(get(gm.rolls).find((roll) => roll.purpose === 'ambush')).toMatchObject({
			source: 'tool',
			total: secret['total'],
			visibility: 'gm'
		});
		await until(() => get(player.rolls).some((roll) => roll.hidden), 'the player sees only that it was made');
		expect(get(player.rolls).filter((roll) => roll.hidden)).toHaveLength(1);
		// How it was rolled is no secret: the roll log can say "dice tool" for it too.
		expect(get(player.rolls).find((roll) => roll.hidden)?.source).toBe('tool');
	});
});

describe('what the bridge sent', () => {
	it('fits the server schema the client types are generated from, message by message', () => {
		expect(received.some((message) => (message as { type: string }).type === 'combat_update')).toBe(true);
		expect(schemaMisfits(inject('serverSchema'))).toEqual([]);
	});
});
