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
	pendingRoll
} from './table';

const envelope = { id: 'x', timestamp: 1764115200000, version: '1.0.0', scope: 'campaign', campaign_id: 'c' } as const;

const mira: Server.ParticipantView = {
	user_id: 'u1',
	username: 'mira',
	display_name: 'Mira',
	role: 'player',
	status: 'online',
	character_id: null,
	character_name: null,
	sessions: 1
};

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
			rolls: [20],
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

	it('reads the acting combatant, past the end as the last one', () => {
		const shared = {
			...emptySharedState(),
			initiative_order: [
				{ id: 'a', name: 'Mira', initiative: 15 },
				{ id: 'b', name: 'Hidden combatant', hidden: true as const }
			],
			active_turn: 5,
			round_number: 2
		};
		const view = initiativeOf(shared);
		expect(view.current?.id).toBe('b');
		expect(view.round).toBe(2);
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
		table = applyEvent(table, { ...envelope, seq: 3, type: 'participant_left', data: { user_id: 'u1', username: 'mira' } }, 'u0');
		expect(table.cursors.size).toBe(0);
	});
});
