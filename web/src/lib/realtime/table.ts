/**
 * The table as one client sees it, and the pure reducers that move it forward: a snapshot
 * replaces it, each campaign event changes one part of it. Every reducer returns a new object
 * for the parts it changed and the same object for the rest, so stores can tell what moved.
 */
import type {
	CampaignEvent,
	CombatantView,
	Participant,
	Role,
	Server,
	SharedStateView,
	StateOperation,
	StoredStroke,
	Visibility
} from './messages';

/** One die of a roll as the roll log shows it. */
export interface RollDie {
	value: number;
	/** Faces; null when only the value is known (someone else's roll). */
	sides: number | null;
	kept: boolean;
	dropped: boolean;
	rerolled: boolean;
	exploded: boolean;
}

/** One line of the roll log. */
export interface RollEntry {
	/** Stable key for lists: the roll id once numbered, the request id while pending. */
	key: string;
	rollId: string | number | null;
	requestId: string | null;
	seq: number | null;
	playerId: string | null;
	playerName: string | null;
	expression: string | null;
	purpose: string | null;
	visibility: Visibility | null;
	total: number | null;
	dice: RollDie[];
	text: string | null;
	crit: boolean;
	fumble: boolean;
	/** A roll this viewer may not see (a blind roll, or a GM roll of someone else). */
	hidden: boolean;
	/** Sent by this client and not yet numbered by the bridge. */
	pending: boolean;
	mine: boolean;
	createdAt: string | null;
	/** `tool`: made with the `roll_dice` tool (by Claude or a tool call at the table), else `table`. */
	source: 'table' | 'tool';
}

export interface CursorView {
	userId: string;
	username: string;
	x: number;
	y: number;
	element: string | null;
	/** Local time (ms) the position arrived, to fade out still cursors. */
	at: number;
}

export interface ActivityEvent {
	type: string;
	seq: number | null;
	at: number;
	player: string | null;
	summary: string;
}

export interface InitiativeView {
	order: CombatantView[];
	activeTurn: number;
	round: number;
	/** Who is acting: `activeTurn` past the end reads as the last combatant. */
	current: CombatantView | null;
	/** The play session whose combat this is; null when no session runs. */
	sessionId: string | null;
	/** The play session's title ("Session 3"); null when no session runs. */
	title: string | null;
	/** False once the play session has ended (the last order stays visible), and with no session. */
	live: boolean;
}

/** A piece of campaign content as the content feed sends it (masked for this seat). */
export type Entity = Record<string, unknown>;

export interface TableState {
	campaignId: string | null;
	role: Role | null;
	participants: Map<string, Participant>;
	shared: SharedStateView;
	rolls: RollEntry[];
	canvas: StoredStroke[];
	cursors: Map<string, CursorView>;
	activity: ActivityEvent[];
	campaign: Entity | null;
	characters: Map<string, Entity>;
	npcs: Map<string, Entity>;
	locations: Map<string, Entity>;
	items: Map<string, Entity>;
	/**
	 * Notes this seat may read (a withheld note's content is never stored). A note deleted this
	 * session stays as a marker, `{ id, deleted: true }` (see `isDeletedNote`), and so does one this
	 * seat may no longer read (turned GM-only, say), `{ id, withheld: true }` (see `isWithheldNote`):
	 * a list loaded before holds the note, and only the marker tells it apart from a note no event
	 * has named. A later readable update replaces the marker.
	 */
	notes: Map<string, Entity>;
	/** The campaign's combat (the one initiative tracker), as the last `combat_update` had it. */
	combat: Server.CombatView | null;
}

export interface TableLimits {
	rolls: number;
	activity: number;
}

export const DEFAULT_LIMITS: TableLimits = { rolls: 200, activity: 100 };

export function emptySharedState(): SharedStateView {
	return {
		initiative_order: [],
		active_turn: 0,
		round_number: 1,
		shared_notes: '',
		custom: {},
		version: 0,
		last_update: new Date(0).toISOString(),
		dice_rolls: []
	};
}

export function emptyTable(campaignId: string | null = null): TableState {
	return {
		campaignId,
		role: null,
		participants: new Map(),
		shared: emptySharedState(),
		rolls: [],
		canvas: [],
		cursors: new Map(),
		activity: [],
		campaign: null,
		characters: new Map(),
		npcs: new Map(),
		locations: new Map(),
		items: new Map(),
		notes: new Map(),
		combat: null
	};
}

const NO_COMBAT: InitiativeView = {
	order: [],
	activeTurn: 0,
	round: 1,
	current: null,
	sessionId: null,
	title: null,
	live: false
};

/** The initiative tracker from the campaign's combat (none: an empty order in round 1). */
export function initiativeOf(combat: Server.CombatView | null): InitiativeView {
	if (combat === null) return NO_COMBAT;
	const order = combat.order;
	const activeTurn = combat.active_turn;
	const current =
		combat.current ?? (order.length === 0 ? null : (order[Math.min(activeTurn, order.length - 1)] ?? null));
	return {
		order,
		activeTurn,
		round: Math.max(1, combat.round_number),
		current,
		sessionId: combat.session_id,
		title: combat.title,
		live: combat.live
	};
}

/** The shared state's initiative keys mirror the combat, for readers of `sharedState`. */
function withCombat(shared: SharedStateView, combat: Server.CombatView | null): SharedStateView {
	return {
		...shared,
		initiative_order: combat?.order ?? [],
		active_turn: combat?.active_turn ?? 0,
		round_number: Math.max(1, combat?.round_number ?? 1)
	};
}

function diceFromResult(dice: Server.DieResult[]): RollDie[] {
	return dice.map((die) => ({
		value: die.value,
		sides: die.sides,
		kept: die.kept,
		dropped: die.dropped,
		rerolled: die.rerolled,
		exploded: die.exploded
	}));
}

function diceFromValues(values: number[]): RollDie[] {
	return values.map((value) => ({
		value,
		sides: null,
		kept: true,
		dropped: false,
		rerolled: false,
		exploded: false
	}));
}

// A rolled dice term in a roll's text: `4d6kh3 (6, 5, 3, ~~1~~)`; a struck value did not count.
const ROLLED_TERM = /\d*d(\d+|%)[^\s(]* \(((?:~~)?\d+!?(?:~~)?(?:, (?:~~)?\d+!?(?:~~)?)*)\)/g;

/**
 * Every die of someone else's roll, read from its text (the event carries only the values): which
 * ones were struck (dropped or rerolled), which exploded, and their sides. Null when the text does
 * not account for exactly the values given, so nothing is ever guessed.
 */
export function diceFromText(text: string, values: number[]): RollDie[] | null {
	const dice: RollDie[] = [];
	for (const match of text.matchAll(ROLLED_TERM)) {
		const sides = match[1] === '%' ? 100 : Number(match[1]);
		for (const item of (match[2] ?? '').split(', ')) {
			const struck = item.startsWith('~~');
			const bare = struck ? item.slice(2, -2) : item;
			const exploded = bare.endsWith('!');
			const value = Number(exploded ? bare.slice(0, -1) : bare);
			dice.push({ value, sides, kept: !struck, dropped: struck, rerolled: false, exploded });
		}
	}
	if (dice.length !== values.length || dice.some((die, i) => die.value !== values[i])) return null;
	return dice;
}

function rollFromStored(stored: Server.StoredRoll, me: string | null): RollEntry {
	return {
		key: `roll:${stored.id}`,
		rollId: stored.id,
		requestId: null,
		seq: null,
		playerId: stored.player_id,
		playerName: stored.player_name,
		expression: stored.expression,
		purpose: stored.purpose,
		visibility: stored.visibility,
		total: stored.total,
		dice: diceFromResult(stored.dice),
		text: stored.text,
		crit: stored.crit,
		fumble: stored.fumble,
		hidden: false,
		pending: false,
		mine: stored.player_id === me,
		createdAt: stored.created_at,
		source: stored.source === 'tool' ? 'tool' : 'table'
	};
}

function rollFromEvent(event: Extract<CampaignEvent, { type: 'dice_roll' }>, me: string | null): RollEntry {
	const data = event.data;
	const base = {
		key: data.roll_id !== null ? `roll:${data.roll_id}` : `seq:${event.seq}`,
		rollId: data.roll_id,
		requestId: null,
		seq: event.seq,
		playerId: data.player_id,
		playerName: data.player_name,
		pending: false,
		mine: data.player_id === me,
		createdAt: new Date(event.timestamp).toISOString(),
		source: 'source' in data && data.source === 'tool' ? ('tool' as const) : ('table' as const)
	};
	if ('hidden' in data) {
		return {
			...base,
			expression: null,
			purpose: null,
			visibility: data.visibility,
			total: null,
			dice: [],
			text: null,
			crit: false,
			fumble: false,
			hidden: true
		};
	}
	return {
		...base,
		expression: data.expression,
		purpose: data.purpose,
		visibility: data.visibility,
		total: data.total,
		dice: diceFromText(data.text, data.results) ?? diceFromValues(data.results),
		text: data.text,
		crit: data.crit,
		fumble: data.fumble,
		hidden: false
	};
}

/** The roll log entry for a roll this client just asked for, until the bridge numbers it. */
export function pendingRoll(
	requestId: string,
	expression: string,
	purpose: string | null,
	visibility: Visibility,
	me: string | null,
	myName: string | null
): RollEntry {
	return {
		key: `req:${requestId}`,
		rollId: null,
		requestId,
		seq: null,
		playerId: me,
		playerName: myName,
		expression,
		purpose,
		visibility,
		total: null,
		dice: [],
		text: null,
		crit: false,
		fumble: false,
		hidden: false,
		pending: true,
		mine: true,
		createdAt: new Date().toISOString(),
		source: 'table'
	};
}

function capped<T>(items: T[], limit: number): T[] {
	return items.length > limit ? items.slice(items.length - limit) : items;
}

function withActivity(state: TableState, entry: ActivityEvent, limits: TableLimits): ActivityEvent[] {
	return capped([...state.activity, entry], limits.activity);
}

/** The table from a `campaign_snapshot`: a full one replaces what is held, a recovered one keeps it. */
export function applySnapshot(
	state: TableState,
	data: Server.CampaignSnapshotData,
	me: string | null,
	limits: TableLimits = DEFAULT_LIMITS
): TableState {
	const participants = new Map((data.participants ?? []).map((p) => [p.participant_id, p]));
	if (data.recovered || data.state == null) {
		// The replayed events bring the combat (and the rest) up to date.
		return { ...state, campaignId: data.campaign_id, role: data.role, participants };
	}
	const same = state.campaignId === data.campaign_id;
	const combat = data.combat ?? null;
	// Rolls still waiting for their number stay: their answer may come after the snapshot.
	const waiting = state.rolls.filter((roll) => roll.pending);
	const rolls = capped(
		[...(data.state.dice_rolls ?? []).map((roll) => rollFromStored(roll, me)), ...waiting],
		limits.rolls
	);
	return {
		...emptyTable(data.campaign_id),
		role: data.role,
		participants,
		shared: data.state,
		rolls,
		canvas: data.canvas ?? [],
		cursors: same ? state.cursors : new Map(),
		activity: same ? state.activity : [],
		// Content is not in the snapshot: what the feed told this client of the same campaign stays.
		campaign: same ? state.campaign : null,
		characters: same ? state.characters : new Map(),
		npcs: same ? state.npcs : new Map(),
		locations: same ? state.locations : new Map(),
		items: same ? state.items : new Map(),
		notes: same ? state.notes : new Map(),
		combat
	};
}

type Path = (string | number)[];

function setIn(target: unknown, path: Path, operation: StateOperation, value: unknown): unknown {
	const [head, ...rest] = path;
	if (head === undefined) {
		if (operation === 'merge' && isRecord(target) && isRecord(value)) return { ...target, ...value };
		return value;
	}
	const container: Record<string | number, unknown> | unknown[] = Array.isArray(target)
		? [...target]
		: isRecord(target)
			? { ...target }
			: typeof head === 'number'
				? []
				: {};
	const child = (container as Record<string | number, unknown>)[head];
	if (rest.length === 0 && operation === 'delete') {
		if (Array.isArray(container) && typeof head === 'number') container.splice(head, 1);
		else delete (container as Record<string | number, unknown>)[head];
		return container;
	}
	(container as Record<string | number, unknown>)[head] = setIn(child, rest, operation, value);
	return container;
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The shared state after one accepted change (`state_update` event data). */
export function applyStateChange(shared: SharedStateView, change: Server.StateChangedData): SharedStateView {
	const next = setIn(shared, change.path, change.operation, change.value) as SharedStateView;
	return { ...next, version: change.version, last_update: change.last_update };
}

function rollSummary(entry: RollEntry): string {
	if (entry.hidden) return `${entry.playerName ?? 'someone'} made a hidden roll`;
	const purpose = entry.purpose ? ` (${entry.purpose})` : '';
	const how = entry.source === 'tool' ? ' with the dice tool' : '';
	return `${entry.playerName ?? 'someone'} rolled ${entry.expression ?? ''} = ${entry.total ?? '?'}${purpose}${how}`;
}

/** Who made a content change, by name: `by` is a user id, or `local` (a stdio client: the GM). */
function who(state: TableState, by: string | null | undefined): string | null {
	if (by === undefined || by === null) return null;
	if (by === 'local') return 'GM';
	return state.participants.get(by)?.display_name ?? null;
}

function entityId(entity: Entity, fallback: string): string {
	return typeof entity['id'] === 'string' ? entity['id'] : fallback;
}

function entityName(entity: Entity, fallback: string): string {
	if (typeof entity['name'] === 'string' && entity['name'] !== '') return entity['name'];
	if (typeof entity['title'] === 'string' && entity['title'] !== '') return entity['title'];
	return fallback;
}

/** A map with one entity set (or removed, when `entity` is null). */
function withEntity(map: Map<string, Entity>, id: string, entity: Entity | null): Map<string, Entity> {
	if (entity === null && !map.has(id)) return map;
	const next = new Map(map);
	if (entity === null) next.delete(id);
	else next.set(id, entity);
	return next;
}

/** Whether a `notes` entry is the marker a deletion left (the note is gone, not merely unseen). */
export function isDeletedNote(entity: Entity | undefined): boolean {
	return entity?.['deleted'] === true;
}

/** Whether a `notes` entry is the marker a withheld update left (this seat may no longer read it). */
export function isWithheldNote(entity: Entity | undefined): boolean {
	return entity?.['withheld'] === true;
}

/** Whether a `notes` entry says the note has left this seat's view: deleted, or no longer readable. */
export function isGoneNote(entity: Entity | undefined): boolean {
	return isDeletedNote(entity) || isWithheldNote(entity);
}

type EntityMapKey = 'characters' | 'npcs' | 'locations' | 'items' | 'notes';

const MAP_OF_KIND: Partial<Record<string, EntityMapKey>> = {
	character: 'characters',
	npc: 'npcs',
	location: 'locations',
	item: 'items',
	note: 'notes'
};

const KIND_LABEL: Record<EntityMapKey, string> = {
	characters: 'A character',
	npcs: 'An NPC',
	locations: 'A location',
	items: 'An item',
	notes: 'A note'
};

/** Put a numbered roll in the log: it takes the place of this client's matching pending roll. */
function withRoll(rolls: RollEntry[], entry: RollEntry, limit: number): RollEntry[] {
	// A tool roll never answers a `dice_roll` request of this client.
	if (entry.mine && entry.source === 'table') {
		const index = rolls.findIndex(
			(roll) => roll.pending && roll.rollId === null && (entry.hidden || roll.expression === entry.expression)
		);
		const pending = index >= 0 ? rolls[index] : undefined;
		if (pending !== undefined) {
			const merged: RollEntry = {
				...entry,
				requestId: pending.requestId,
				// The reply (full dice with dropped flags) may have come first.
				dice: pending.dice.length > 0 ? pending.dice : entry.dice,
				expression: entry.expression ?? pending.expression,
				purpose: entry.purpose ?? pending.purpose
			};
			const next = [...rolls];
			next.splice(index, 1);
			next.push(merged);
			return capped(next, limit);
		}
	}
	const known = rolls.findIndex((roll) => roll.key === entry.key);
	const existing = known >= 0 ? rolls[known] : undefined;
	if (existing !== undefined) {
		// My roll whose reply came first (over SSE the reply and the event travel apart).
		if (existing.seq !== null) return rolls;
		const next = [...rolls];
		next[known] = { ...existing, seq: entry.seq, pending: false };
		return next;
	}
	return capped([...rolls, entry], limit);
}

/** The roll log after the bridge answered this client's own roll (full dice, crit and fumble). */
export function applyRollResult(
	rolls: RollEntry[],
	requestId: string,
	result: Server.RolledDice | Server.HiddenRollResult
): RollEntry[] {
	const index = rolls.findIndex((roll) => roll.requestId === requestId);
	const entry = index >= 0 ? rolls[index] : undefined;
	if (entry === undefined) return rolls;
	const next = [...rolls];
	if ('hidden' in result) {
		next[index] = { ...entry, hidden: true, pending: entry.seq === null && entry.rollId === null };
		return next;
	}
	const rollId = entry.rollId ?? result.roll_id ?? null;
	next[index] = {
		...entry,
		rollId,
		key: rollId !== null ? `roll:${rollId}` : entry.key,
		total: result.total,
		dice: diceFromResult(result.dice),
		text: result.text,
		crit: result.crit,
		fumble: result.fumble,
		visibility: result.visibility,
		// Without a table there is no event to wait for: the reply is the roll.
		pending: false
	};
	return next;
}

/** Take a pending roll out of the log (its request failed). */
export function dropPendingRoll(rolls: RollEntry[], requestId: string): RollEntry[] {
	return rolls.filter((roll) => !(roll.pending && roll.requestId === requestId));
}

/** The table after one campaign event. */
export function applyEvent(
	state: TableState,
	event: CampaignEvent,
	me: string | null,
	limits: TableLimits = DEFAULT_LIMITS
): TableState {
	const at = Date.now();
	switch (event.type) {
		case 'participant_joined':
		case 'presence_update': {
			const participants = new Map(state.participants);
			// Keyed by seat: a person's is their user id, an agent acting for them has its own.
			participants.set(event.data.participant_id, event.data);
			const summary =
				event.type === 'participant_joined'
					? `${event.data.display_name} joined`
					: `${event.data.display_name} is ${event.data.status}`;
			return {
				...state,
				participants,
				role: event.data.participant_id === me ? event.data.role : state.role,
				activity: withActivity(
					state,
					{ type: event.type, seq: event.seq, at, player: event.data.display_name, summary },
					limits
				)
			};
		}
		case 'participant_left': {
			const participants = new Map(state.participants);
			const left = participants.get(event.data.participant_id);
			participants.delete(event.data.participant_id);
			const cursors = new Map(state.cursors);
			cursors.delete(event.data.participant_id);
			const name = left?.display_name ?? event.data.username;
			return {
				...state,
				participants,
				cursors,
				activity: withActivity(
					state,
					{ type: event.type, seq: event.seq, at, player: name, summary: `${name} left` },
					limits
				)
			};
		}
		case 'dice_roll': {
			const entry = rollFromEvent(event, me);
			return {
				...state,
				rolls: withRoll(state.rolls, entry, limits.rolls),
				activity: withActivity(
					state,
					{ type: event.type, seq: event.seq, at, player: entry.playerName, summary: rollSummary(entry) },
					limits
				)
			};
		}
		case 'state_update':
			return { ...state, shared: applyStateChange(state.shared, event.data) };
		case 'canvas_draw': {
			const data = event.data;
			if (data.action === 'stroke') {
				const canvas = state.canvas.some((stroke) => stroke.id === data.stroke.id)
					? state.canvas
					: [...state.canvas, data.stroke];
				return { ...state, canvas };
			}
			if (data.action === 'erase') {
				return { ...state, canvas: state.canvas.filter((stroke) => stroke.id !== data.stroke_id) };
			}
			return { ...state, canvas: [] };
		}
		case 'campaign_update':
			return {
				...state,
				campaign: event.data.campaign,
				activity: withActivity(
					state,
					{ type: event.type, seq: event.seq, at, player: who(state, event.data.by), summary: 'The campaign changed' },
					limits
				)
			};
		case 'character_update':
			return withContent(state, event, 'characters', event.data.character, limits, at);
		case 'npc_update':
			return withContent(state, event, 'npcs', event.data.npc, limits, at);
		case 'location_update':
			return withContent(state, event, 'locations', event.data.location, limits, at);
		case 'item_update':
			return withContent(state, event, 'items', event.data.item, limits, at);
		case 'note_added':
		case 'note_update':
			return withContent(state, event, 'notes', event.data.note, limits, at);
		case 'combat_update': {
			const { by, change: _change, ...combat } = event.data;
			const held = state.combat;
			if (!combat.live && held !== null && held.live && held.session_id !== combat.session_id) {
				// An earlier, ended play session changed (its summary, say): the running combat stays.
				return state;
			}
			const current = combat.current;
			const summary = !combat.live
				? 'The combat ended'
				: current
					? `Round ${Math.max(1, combat.round_number)}: ${current.name}'s turn`
					: 'The initiative changed';
			return {
				...state,
				combat,
				shared: withCombat(state.shared, combat),
				activity: withActivity(state, { type: event.type, seq: event.seq, at, player: who(state, by), summary }, limits)
			};
		}
		case 'content_deleted': {
			const { kind, id, by } = event.data;
			const key = MAP_OF_KIND[kind];
			const activity = withActivity(
				state,
				{ type: event.type, seq: event.seq, at, player: who(state, by), summary: `A ${kind} was deleted` },
				limits
			);
			if (key === 'notes') return { ...state, notes: withEntity(state.notes, id, { id, deleted: true }), activity };
			if (key !== undefined) return { ...state, [key]: withEntity(state[key], id, null), activity };
			if (kind === 'campaign') return { ...state, campaign: null, activity };
			if (kind === 'play_session' && state.combat?.session_id === id) {
				return { ...state, combat: null, shared: withCombat(state.shared, null), activity };
			}
			return { ...state, activity };
		}
	}
}

type ContentEvent = Extract<
	CampaignEvent,
	{ type: 'character_update' | 'npc_update' | 'location_update' | 'item_update' | 'note_added' | 'note_update' }
>;

/** The table after a content event of one kind: the entity replaced, or dropped when withheld. */
function withContent(
	state: TableState,
	event: ContentEvent,
	key: EntityMapKey,
	entity: Entity | null,
	limits: TableLimits,
	at: number
): TableState {
	const change = event.data.change;
	// A withheld entity (a note this seat may not read) is not shown. A withheld update of a note
	// means this seat may no longer read it (it may have been readable, then turned GM-only): it
	// leaves a marker, so that a list loaded before drops it too.
	const id = entity === null ? change.entity_id : entityId(entity, change.entity_id);
	const gone = entity === null && key === 'notes' && event.type === 'note_update' ? { id, withheld: true } : entity;
	const map = withEntity(state[key], id, gone);
	if (entity === null) return map === state[key] ? state : { ...state, [key]: map };
	const name = entityName(entity, KIND_LABEL[key]);
	const verb = event.type === 'note_added' || change.operation === 'created' ? 'was added' : 'changed';
	return {
		...state,
		[key]: map,
		activity: withActivity(
			state,
			{ type: event.type, seq: event.seq, at, player: who(state, event.data.by), summary: `${name} ${verb}` },
			limits
		)
	};
}

/** The cursors after a batch (positions replace; nobody is removed until they leave). */
export function applyCursors(
	cursors: Map<string, CursorView>,
	batch: Server.CursorBatchData,
	at: number = Date.now()
): Map<string, CursorView> {
	const next = new Map(cursors);
	for (const entry of batch.cursors) {
		const { x, y, element } = entry.position as { x?: unknown; y?: unknown; element?: unknown };
		if (typeof x !== 'number' || typeof y !== 'number') continue;
		next.set(entry.user_id, {
			userId: entry.user_id,
			username: entry.username,
			x,
			y,
			element: typeof element === 'string' ? element : null,
			at
		});
	}
	return next;
}
