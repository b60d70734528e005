import { describe, expect, it } from 'vitest';
import type { CampaignEvent, Server } from './messages';
import {
	applyCursors,
	applyEvent,
	applyRollResult,
	applySnapshot,
	applyStateChange,
	diceFromText,
	emptySharedState,
	emptyTable,
	initiativeOf,
	isDeletedNote,
	isWithheldNote,
	pendingRoll
} from './table';
import { shownNotes } from './notes';

const envelope = { id: 'x', timestamp: 1764115200000, version: '1.0.0', scope: 'campaign', campaign_id: 'c' } as const;

const mira: Server.ParticipantView = {
	participant_id: 'u1',
	kind: 'person',
	client: null,
	user_id: 'u1',
	username: 'mira',
	display_name: 'Mira',
	role: 'player',
	status: 'online',
	character_id: null,
	character_name: null,
	sessions: 1
};

const gm: Server.ParticipantView = { ...mira, participant_id: 'u0', user_id: 'u0', username: 'gwen', display_name: 'Gwen', role: 'gm' };

function change(kind: string, entityId: string, operation: 'created' | 'updated' | 'deleted' = 'updated') {
	return { id: 300, kind, entity_id: entityId, version: 2, operation, by_role: 'gm' };
}

const combat: Server.CombatView = {
	session_id: 'sess_2b8',
	number: 3,
	title: 'Session 3',
	live: true,
	round_number: 1,
	active_turn: 1,
	current: { id: 'cbt_a1', name: 'Goblin', initiative: 12, hp: 7, max_hp: 7, conditions: [], hidden: false, defeated: false },
	order: [
		{ id: 'char_9a1', name: 'Mira', initiative: 17, character_id: 'char_9a1', hp: 15, max_hp: 24, conditions: [], hidden: false, defeated: false },
		{ id: 'cbt_a1', name: 'Goblin', initiative: 12, hp: 7, max_hp: 7, conditions: [], hidden: false, defeated: false },
		{ id: 'cbt_f0', name: 'Hidden combatant', hidden: true }
	]
};

function combatEvent(seq: number, view: Server.CombatView): CampaignEvent {
	return { ...envelope, seq, type: 'combat_update', data: { ...view, by: 'u0', change: change('play_session', view.session_id) } };
}

type Kind = 'campaign' | 'character' | 'npc' | 'location' | 'item' | 'note';

function contentEvent(
	seq: number,
	type: 'campaign_update' | 'character_update' | 'npc_update' | 'location_update' | 'item_update' | 'note_added' | 'note_update',
	kind: Kind,
	entity: Record<string, unknown>,
	operation: 'created' | 'updated' = 'updated'
): CampaignEvent {
	const data = { [kind]: entity, by: 'local', change: change(kind, String(entity['id']), operation) };
	return { ...envelope, seq, type, data } as unknown as CampaignEvent;
}

function rollEvent(seq: number, data: Server.DiceRolled['data']): CampaignEvent {
	return { ...envelope, seq, type: 'dice_roll', data };
}

const publicRoll: Server.RollEventData = {
	roll_id: 7,
	player_id: 'u1',
	player_name: 'Mira',
	expression: '2d20kh1+5',
	results: [20, 11],
	total: 25,
	purpose: 'attack',
	visibility: 'public',
	crit: true,
	fumble: false,
	text: '2d20kh1 (20, ~~11~~) + 5 = 25'
};

describe('table reducers', () => {
	it('takes the whole table from a full snapshot', () => {
		const shared = { ...emptySharedState(), shared_notes: 'hello', version: 4 };
		const table = applySnapshot(
			emptyTable('c'),
			{ campaign_id: 'c', role: 'gm', epoch: 'e', seq: 9, recovered: false, state: shared, canvas: [], participants: [mira] },
			'u0'
		);
		expect(table.role).toBe('gm');
		expect(table.shared.shared_notes).toBe('hello');
		expect([...table.participants.keys()]).toEqual(['u1']);
	});

	it('keeps what it has on a recovered snapshot', () => {
		const before = { ...emptyTable('c'), shared: { ...emptySharedState(), version: 12 } };
		const table = applySnapshot(
			before,
			{ campaign_id: 'c', role: 'player', epoch: 'e', seq: 9, recovered: true, participants: [mira] },
			'u1'
		);
		expect(table.shared).toBe(before.shared);
		expect(table.role).toBe('player');
	});

	it('turns my pending roll into the numbered one, with the full dice from the reply', () => {
		let table = emptyTable('c');
		table = { ...table, rolls: [pendingRoll('r1', '2d20kh1+5', 'attack', 'public', 'u1', 'Mira')] };
		table = applyEvent(table, rollEvent(3, publicRoll), 'u1');
		expect(table.rolls).toHaveLength(1);
		expect(table.rolls[0]).toMatchObject({ seq: 3, rollId: 7, pending: false, total: 25, crit: true, requestId: 'r1' });
		const rolls = applyRollResult(table.rolls, 'r1', {
			expression: '2d20kh1+5',
			label: null,
			total: 25,
			dice: [
				{ sides: 20, value: 20, kept: true, dropped: false, rerolled: false, exploded: false, group: 0 },
				{ sides: 20, value: 11, kept: false, dropped: true, rerolled: false, exploded: false, group: 0 }
			],
			rolls: [20, 11],
			modifier: 5,
			crit: true,
			fumble: false,
			text: '2d20kh1 (20, ~~11~~) + 5 = 25',
			purpose: 'attack',
			visibility: 'public'
		});
		expect(rolls[0]!.dice.map((die) => die.dropped)).toEqual([false, true]);
	});

	it('numbers my roll when its reply came before its event', () => {
		let table = { ...emptyTable('c'), rolls: [pendingRoll('r1', '2d20kh1+5', 'attack', 'public', 'u1', 'Mira')] };
		const rolls = applyRollResult(table.rolls, 'r1', {
			expression: '2d20kh1+5',
			label: null,
			total: 25,
			dice: [],
			rolls: [20],
			modifier: 5,
			crit: true,
			fumble: false,
			text: '',
			purpose: 'attack',
			visibility: 'public',
			roll_id: 7
		});
		table = applyEvent({ ...table, rolls }, rollEvent(3, publicRoll), 'u1');
		expect(table.rolls).toHaveLength(1);
		expect(table.rolls[0]).toMatchObject({ key: 'roll:7', seq: 3, pending: false, requestId: 'r1' });
	});

	it("shows someone else's blind roll as hidden, and a repeated event once", () => {
		const hidden: Server.HiddenRollEventData = {
			roll_id: 8,
			player_id: 'u2',
			player_name: 'Oskar',
			visibility: 'blind',
			hidden: true
		};
		let table = applyEvent(emptyTable('c'), rollEvent(4, hidden), 'u1');
		table = applyEvent(table, rollEvent(4, hidden), 'u1');
		expect(table.rolls).toHaveLength(1);
		expect(table.rolls[0]).toMatchObject({ hidden: true, total: null, playerName: 'Oskar' });
		expect(table.activity.at(-1)?.summary).toContain('hidden');
	});

	it("reads dropped and exploded dice of someone else's roll from its text", () => {
		const table = applyEvent(emptyTable('c'), rollEvent(5, publicRoll), 'u9');
		expect(table.rolls[0]!.dice).toEqual([
			{ value: 20, sides: 20, kept: true, dropped: false, rerolled: false, exploded: false },
			{ value: 11, sides: 20, kept: false, dropped: true, rerolled: false, exploded: false }
		]);
		expect(diceFromText('1d6! (6!, 3) + 4d6kh3 (6, 5, 3, ~~1~~) + 2 = 23', [6, 3, 6, 5, 3, 1])?.map((d) => [d.sides, d.exploded, d.dropped])).toEqual([
			[6, true, false],
			[6, false, false],
			[6, false, false],
			[6, false, false],
			[6, false, false],
			[6, false, true]
		]);
		expect(diceFromText('1d20 (14) + 5 = 19', [15])).toBeNull();
	});

	it('applies set, merge and delete at a path, keeping version and last update', () => {
		let shared = emptySharedState();
		const change = (path: (string | number)[], operation: 'set' | 'merge' | 'delete', value: unknown, version: number) =>
			applyStateChange(shared, { path, operation, value, version, previous_version: null, last_update: 't' + version });
		shared = change(['custom', 'map'], 'set', { w: 10 }, 1);
		shared = change(['custom', 'map'], 'merge', { h: 5 }, 2);
		expect(shared.custom).toEqual({ map: { w: 10, h: 5 } });
		shared = change(['custom', 'map', 'w'], 'delete', null, 3);
		expect(shared.custom).toEqual({ map: { h: 5 } });
		expect(shared.version).toBe(3);
		expect(shared.last_update).toBe('t3');
	});

	it('reads the acting combatant from the combat, past the end as the last one', () => {
		const view = initiativeOf({ ...combat, current: null, active_turn: 5, round_number: 2 });
		expect(view.current?.id).toBe('cbt_f0');
		expect(view).toMatchObject({ round: 2, activeTurn: 5, sessionId: 'sess_2b8', title: 'Session 3', live: true });
		expect(initiativeOf(null)).toMatchObject({ order: [], round: 1, current: null, sessionId: null, live: false });
	});

	it('follows the combat from combat_update, mirrored into the shared state', () => {
		let table = applyEvent(emptyTable('c'), { ...envelope, seq: 1, type: 'participant_joined', data: gm }, 'u1');
		table = applyEvent(table, combatEvent(2, combat), 'u1');
		expect(table.combat).toMatchObject({ session_id: 'sess_2b8', active_turn: 1, round_number: 1 });
		expect(table.combat).not.toHaveProperty('change');
		expect(table.shared.initiative_order).toBe(combat.order);
		expect(table.shared.active_turn).toBe(1);
		const view = initiativeOf(table.combat);
		expect(view.current?.name).toBe('Goblin');
		expect(view.order[2]).toEqual({ id: 'cbt_f0', name: 'Hidden combatant', hidden: true });
		expect(table.activity.at(-1)).toMatchObject({ type: 'combat_update', player: 'Gwen', summary: "Round 1: Goblin's turn" });
		const before = table;
		table = applyEvent(table, combatEvent(3, { ...combat, session_id: 'sess_old', number: 2, live: false }), 'u1');
		expect(table).toBe(before);
		table = applyEvent(table, combatEvent(3, { ...combat, live: false }), 'u1');
		expect(table.activity.at(-1)?.summary).toBe('The combat ended');
		table = applyEvent(table, { ...envelope, seq: 4, type: 'content_deleted', data: { kind: 'play_session', id: 'sess_2b8', by: 'local', change: change('play_session', 'sess_2b8', 'deleted') } }, 'u1');
		expect(table.combat).toBeNull();
		expect(table.shared.initiative_order).toEqual([]);
	});

	it("takes the combat from a full snapshot (the shared state's initiative keys as sent)", () => {
		const state = { ...emptySharedState(), initiative_order: combat.order, active_turn: 1, version: 4 };
		let table = applySnapshot(emptyTable('c'), { campaign_id: 'c', role: 'player', epoch: 'e', seq: 9, recovered: false, state, combat, participants: [mira] }, 'u1');
		expect(table.combat).toBe(combat);
		expect(initiativeOf(table.combat).current?.name).toBe('Goblin');
		table = applySnapshot(table, { campaign_id: 'c', role: 'player', epoch: 'e', seq: 10, recovered: false, state: emptySharedState(), combat: null, participants: [mira] }, 'u1');
		expect(table.combat).toBeNull();
	});

	it('keeps campaign content from the change feed by kind, and drops what is deleted', () => {
		let table = applyEvent(emptyTable('c'), contentEvent(1, 'npc_update', 'npc', { id: 'npc_5d2', name: 'The Ferryman' }, 'created'), 'u1');
		table = applyEvent(table, contentEvent(2, 'location_update', 'location', { id: 'loc_71a', name: 'The Ford' }), 'u1');
		table = applyEvent(table, contentEvent(3, 'item_update', 'item', { id: 'item_0c4', name: 'Silver coin' }), 'u1');
		table = applyEvent(table, contentEvent(4, 'character_update', 'character', { id: 'char_9a1', name: 'Mira', hp_current: 7 }), 'u1');
		table = applyEvent(table, contentEvent(5, 'campaign_update', 'campaign', { id: 'c', name: 'Ashes' }), 'u1');
		expect(table.npcs.get('npc_5d2')).toEqual({ id: 'npc_5d2', name: 'The Ferryman' });
		expect(table.locations.get('loc_71a')?.['name']).toBe('The Ford');
		expect(table.items.get('item_0c4')?.['name']).toBe('Silver coin');
		expect(table.characters.get('char_9a1')?.['hp_current']).toBe(7);
		expect(table.campaign).toEqual({ id: 'c', name: 'Ashes' });
		expect(table.activity.map((entry) => entry.summary)).toEqual([
			'The Ferryman was added',
			'The Ford changed',
			'Silver coin changed',
			'Mira changed',
			'The campaign changed'
		]);
		expect(table.activity[0]!.player).toBe('GM');
		table = applyEvent(table, { ...envelope, seq: 6, type: 'content_deleted', data: { kind: 'item', id: 'item_0c4', by: 'local', change: change('item', 'item_0c4', 'deleted') } }, 'u1');
		expect(table.items.size).toBe(0);
		expect(table.npcs.size).toBe(1);
	});

	it('shows the notes a seat may read and never a withheld one', () => {
		let table = applyEvent(emptyTable('c'), contentEvent(1, 'note_added', 'note', { id: 'note_9e3', title: '', body: 'We reached the ford.' }, 'created'), 'u1');
		expect(table.notes.get('note_9e3')?.['body']).toBe('We reached the ford.');
		const withheld = (seq: number, id: string, type: 'note_added' | 'note_update'): CampaignEvent => ({
			...envelope,
			seq,
			type,
			data: { note: null, hidden: true, by: 'local', change: change('note', id, type === 'note_added' ? 'created' : 'updated') }
		});
		const before = table;
		table = applyEvent(table, withheld(2, 'note_a70', 'note_added'), 'u1');
		expect(table).toBe(before);
		expect(table.notes.size).toBe(1);
		// A note that became GM-only goes away: its content with it, a marker in its place.
		table = applyEvent(table, withheld(3, 'note_9e3', 'note_update'), 'u1');
		expect(table.notes.get('note_9e3')).toEqual({ id: 'note_9e3', withheld: true });
		expect(isWithheldNote(table.notes.get('note_9e3'))).toBe(true);
		expect(isDeletedNote(table.notes.get('note_9e3'))).toBe(false);
		expect(table.activity.some((entry) => entry.summary.includes('note'))).toBe(true);
	});

	it('drops a loaded note from the panel when it turns GM-only, and shows it again when shared', () => {
		const ford = { id: 'note_9e3', title: 'Ford', body: 'We reached the ford.', visibility: 'players', created_at: '2026-11-26T01:00:00' };
		const dawn = { id: 'note_c10', title: 'Dawn', body: 'The ferry leaves at dawn.', visibility: 'players', created_at: '2026-11-26T02:00:00' };
		const loaded = [ford, dawn]; // the panel's list_items, before any event named them
		let table = emptyTable('c');
		expect(shownNotes(loaded, table.notes).map((note) => note.id)).toEqual(['note_9e3', 'note_c10']);
		// The GM made the first one GM-only: this player's copy of the event has no content.
		table = applyEvent(
			table,
			{ ...envelope, seq: 1, type: 'note_update', data: { note: null, hidden: true, by: 'usr_gm', change: change('note', 'note_9e3', 'updated') } },
			'u1'
		);
		expect(shownNotes(loaded, table.notes).map((note) => note.id)).toEqual(['note_c10']);
		// Shared again: the readable update replaces the marker.
		table = applyEvent(table, contentEvent(2, 'note_update', 'note', { ...ford, body: 'We crossed the ford.' }, 'updated'), 'u1');
		expect(shownNotes(loaded, table.notes).map((note) => note.body)).toEqual(['We crossed the ford.', 'The ferry leaves at dawn.']);
	});

	it('marks a deleted note as deleted, seen live or only in a list loaded before', () => {
		const deleted = (seq: number, id: string): CampaignEvent => ({
			...envelope,
			seq,
			type: 'content_deleted',
			data: { kind: 'note', id, by: 'local', change: change('note', id, 'deleted') }
		});
		let table = applyEvent(emptyTable('c'), contentEvent(1, 'note_added', 'note', { id: 'note_9e3', title: '', body: 'We reached the ford.' }, 'created'), 'u1');
		expect(isDeletedNote(table.notes.get('note_9e3'))).toBe(false);
		table = applyEvent(table, deleted(2, 'note_9e3'), 'u1');
		expect(table.notes.get('note_9e3')).toEqual({ id: 'note_9e3', deleted: true });
		expect(isDeletedNote(table.notes.get('note_9e3'))).toBe(true);
		// A note no event named before (the panel loaded it) is marked too.
		table = applyEvent(table, deleted(3, 'note_b41'), 'u1');
		expect(isDeletedNote(table.notes.get('note_b41'))).toBe(true);
		expect(isDeletedNote(table.notes.get('note_never_named'))).toBe(false);
		expect(table.activity.filter((entry) => entry.summary === 'A note was deleted')).toHaveLength(2);
	});

	it('logs a tool roll as its own entry, never as the answer to my pending roll', () => {
		let table = { ...emptyTable('c'), rolls: [pendingRoll('r1', '2d20kh1+5', 'attack', 'public', 'u1', 'Mira')] };
		table = applyEvent(table, rollEvent(3, { ...publicRoll, roll_id: 'roll_77', source: 'tool' }), 'u1');
		expect(table.rolls).toHaveLength(2);
		expect(table.rolls[0]).toMatchObject({ pending: true, requestId: 'r1', source: 'table' });
		expect(table.rolls[1]).toMatchObject({ key: 'roll:roll_77', source: 'tool', total: 25, mine: true, pending: false });
		expect(table.activity.at(-1)?.summary).toContain('with the dice tool');
		const stored: Server.StoredRoll = {
			id: 12,
			player_id: 'local',
			player_name: 'GM',
			created_at: 't',
			expression: '1d20',
			label: null,
			total: 4,
			dice: [{ sides: 20, value: 4, kept: true, dropped: false, rerolled: false, exploded: false, group: 0 }],
			rolls: [4],
			crit: false,
			fumble: false,
			text: '1d20 (4) = 4',
			purpose: 'stealth',
			visibility: 'gm',
			source: 'tool'
		};
		const state = { ...emptySharedState(), dice_rolls: [stored] };
		table = applySnapshot(emptyTable('c'), { campaign_id: 'c', role: 'gm', epoch: 'e', seq: 1, recovered: false, state, participants: [] }, 'u1');
		expect(table.rolls[0]).toMatchObject({ source: 'tool', playerName: 'GM', total: 4 });
	});

	it('adds, erases and clears canvas strokes', () => {
		const stroke: Server.StoredStroke = {
			id: 's1',
			tool: 'pen',
			points: [[0, 0]],
			color: '#000',
			width: 2,
			layer: 'map',
			user_id: 'u1'
		};
		let table = applyEvent(emptyTable('c'), { ...envelope, seq: 1, type: 'canvas_draw', data: { action: 'stroke', stroke, by: 'u1' } }, 'u1');
		expect(table.canvas).toHaveLength(1);
		table = applyEvent(table, { ...envelope, seq: 2, type: 'canvas_draw', data: { action: 'erase', stroke_id: 's1', by: 'u1' } }, 'u1');
		expect(table.canvas).toHaveLength(0);
	});

	it('moves cursors by user and forgets the cursor of someone who left', () => {
		let table = emptyTable('c');
		table = { ...table, cursors: applyCursors(table.cursors, { cursors: [{ user_id: 'u1', username: 'mira', position: { x: 1, y: 2, element: 'map' } }] }, 5) };
		expect(table.cursors.get('u1')).toEqual({ userId: 'u1', username: 'mira', x: 1, y: 2, element: 'map', at: 5 });
		table = applyEvent(table, { ...envelope, seq: 3, type: 'participant_left', data: { participant_id: 'u1', kind: 'person', user_id: 'u1', username: 'mira' } }, 'u0');
		expect(table.cursors.size).toBe(0);
	});
});
