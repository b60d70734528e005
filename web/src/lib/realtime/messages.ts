/**
 * Names for the generated protocol types as the client uses them. Every message shape comes from
 * `src/lib/protocol/` (generated from `ttrpg-bridge schema`); this module only groups them.
 */
import type * as Client from '../protocol/client';
import type * as Server from '../protocol/server';

export type { Client, Server };

export type ClientMessage = Client.ClientMessage;
export type ServerMessage = Server.ServerMessage;

/** Events of a campaign's table: they carry a per-campaign `seq`. */
export type CampaignEvent = Extract<ServerMessage, { seq: number }>;
export type CampaignEventType = CampaignEvent['type'];

/** Replies matched to a request by `request_id`. */
export type Reply = Server.Response | Server.DiceRollResult | Server.Ack | Server.ErrorMessage;

export type Role = Server.ParticipantView['role'];
export type Visibility = Server.RolledDice['visibility'];
export type Advantage = NonNullable<Client.DiceRollData['advantage']>;
export type ErrorBody = Server.ErrorBody;
export type Participant = Server.ParticipantView;
export type SharedStateView = Server.SharedStateView;
export type StoredStroke = Server.StoredStroke;
export type CombatantView = Server.Combatant | Server.HiddenCombatant;
/** The campaign's combat: the running play session's initiative (`combat_update`, the snapshot's `combat`). */
export type CombatView = Server.CombatView;
/** One combatant of an `initiative_update` (`set`/`add`): without `initiative` it rolls `1d20 + modifier`. */
export type CombatantInput = Client.CombatantSpec;
export type AckData = Server.AckData;
export type InitiativeUpdate = Client.InitiativeUpdateMessage['data'];
export type CanvasDrawData = Client.CanvasDraw['data'];
export type StrokeInput = Client.Stroke;
export type CampaignChanges = Client.CampaignChanges;
export type PresenceData = Client.PresenceData;
export type StateOperation = Client.StateChangeData['operation'];

const CAMPAIGN_EVENT_TYPES: ReadonlySet<string> = new Set<CampaignEventType>([
	'participant_joined',
	'participant_left',
	'presence_update',
	'dice_roll',
	'state_update',
	'canvas_draw',
	'campaign_update',
	'character_update',
	'npc_update',
	'location_update',
	'item_update',
	'note_added',
	'note_update',
	'combat_update',
	'content_deleted'
]);

/** Whether a message is a sequenced campaign event (and not, say, a cursor batch). */
export function isCampaignEvent(message: ServerMessage): message is CampaignEvent {
	return CAMPAIGN_EVENT_TYPES.has(message.type) && typeof (message as { seq?: unknown }).seq === 'number';
}

/** A failure reported by the bridge (or by the client: `timeout`, `disconnected`), with its code. */
export class RealtimeError extends Error {
	readonly code: string;
	readonly data: Record<string, unknown> | null;

	constructor(code: string, message: string, data: Record<string, unknown> | null = null) {
		super(message);
		this.name = 'RealtimeError';
		this.code = code;
		this.data = data;
	}

	static from(body: ErrorBody): RealtimeError {
		return new RealtimeError(body.code, body.message, (body.data as Record<string, unknown> | null) ?? null);
	}
}

/** A fresh message id: unique enough to match replies and to deduplicate resends on the bridge. */
export function newMessageId(): string {
	const crypto = globalThis.crypto;
	if (crypto?.randomUUID) return crypto.randomUUID().replaceAll('-', '');
	return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 12)}`;
}
