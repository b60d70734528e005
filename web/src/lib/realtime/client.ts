/**
 * The realtime client of a ttrpg-bridge table: one connection (WebSocket, or SSE when a WebSocket
 * cannot get through), kept alive across drops, with the table exposed as stores.
 *
 * Lifecycle. `connect()` opens a transport and authenticates (`authenticate` on a WebSocket, the
 * bearer header on SSE). When the bridge answers `session_created`, the client sits at its
 * campaign: `session_create` the first time, `session_attach` with the last `seq` and `epoch`
 * after a drop (SSE passes them in the stream's URL); over a WebSocket it asks for the missed
 * events as `event_batch` frames (`batch`), which it reads as the events they hold. The `campaign_snapshot` that answers makes
 * the client `authenticated` (ready): the table is replaced or brought up to date (see
 * sequencer.ts), and every request still waiting is sent again with its original id.
 *
 * Drops. A closed socket, an ended stream, or silence longer than about two heartbeat intervals
 * ends the connection; the client reconnects after an exponential, jittered delay (or the
 * bridge's `retry_after`). A WebSocket that never opens `sseFallbackAfter` times in a row makes
 * the client switch to SSE; from there it keeps probing the WebSocket in the background (with its
 * own backoff, see probe.ts) and moves back to it once a probe is greeted: the SSE stream is
 * closed and the WebSocket re-attaches with the last `seq`, so no event is lost or applied twice
 * and waiting requests go out again with their ids. A refused token is refreshed once through the token source
 * before giving up; `disconnect()` ends everything and fails what is still waiting.
 *
 * Requests. Every request has an id and a promise; replies (`response`, `dice_roll_result`,
 * `ack`, `error`) settle it by `request_id`. A request times out only while it is on a live
 * connection; offline it waits in the outbox (the status shows how many changes wait).
 *
 * Tokens. Before the access token expires the client asks its token source for a new one and
 * sends `reauthenticate`, so a long session never meets `token_expired`.
 *
 * This module imports no UI framework: its stores follow the Svelte store contract (store.ts).
 */
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
import {
	isCampaignEvent,
	newMessageId,
	RealtimeError,
	type AckData,
	type Advantage,
	type CampaignChanges,
	type CampaignEvent,
	type CanvasDrawData,
	type Client,
	type CombatantInput,
	type CombatView,
	type InitiativeUpdate,
	type Participant,
	type PresenceData,
	type Reply,
	type Role,
	type Server,
	type ServerMessage,
	type SharedStateView,
	type StateOperation,
	type StoredStroke,
	type StrokeInput,
	type Visibility
} from './messages';
import { Outbox, type OutboxEntry } from './outbox';
import { probeWebSocket, type WebSocketProbe } from './probe';
import { EventSequencer, type SequencerStats } from './sequencer';
import { derived, writable, type Readable, type Writable } from './store';
import {
	applyCursors,
	applyEvent,
	applyRollResult,
	applySnapshot,
	DEFAULT_LIMITS,
	dropPendingRoll,
	emptyTable,
	initiativeOf,
	pendingRoll,
	type ActivityEvent,
	type CursorView,
	type Entity,
	type InitiativeView,
	type RollEntry,
	type TableLimits,
	type TableState
} from './table';
import { renewalDelay, staticToken, tokenTimes, type TokenSource } from './tokens';
import {
	SseTransport,
	WebSocketTransport,
	type CloseInfo,
	type Transport,
	type TransportKind,
	type WebSocketFactory
} from './transport';

/** Where the connection stands. `authenticated` is ready: signed in and, with a campaign, seated. */
export type ConnectionState =
	| 'disconnected'
	| 'connecting'
	| 'connected'
	| 'authenticated'
	| 'reconnecting'
	| 'offline';

export interface ConnectionStatus {
	state: ConnectionState;
	/** The transport in use (or being tried). */
	transport: TransportKind | null;
	/** Unanswered changes (sent or waiting to be): "3 changes waiting". */
	pending: number;
	/** Reconnect attempts since the last time the client was ready. */
	attempt: number;
	/** When the next reconnect attempt starts (ms since epoch), while reconnecting. */
	retryAt: number | null;
	/** Why the last connection ended or was refused. */
	error: { code: string; message: string } | null;
	sessionId: string | null;
	user: Server.SessionUser | null;
	campaignId: string | null;
	role: Role | null;
}

/** A change the bridge refused, kept so the UI can say why next to where it was made. */
export interface RefusedChange {
	requestId: string;
	type: string;
	code: string;
	message: string;
	data: Record<string, unknown> | null;
	at: number;
}

export interface ClientStats extends SequencerStats {
	/** Requests sent again after a reconnect. */
	resent: number;
	/** Replies marked `duplicate` by the bridge (a resent change it had already applied). */
	duplicateReplies: number;
	reconnects: number;
	/** Access tokens renewed and accepted by `reauthenticate`. */
	renewals: number;
	/** Times the client fell back from WebSocket to SSE. */
	sseFallbacks: number;
	/** Times a background probe found the WebSocket working again and the client moved back to it. */
	websocketReturns: number;
}

export interface TTRPGClientConfig {
	/** The bridge's HTTP origin, e.g. `https://table.example`; default: the page's origin. */
	baseUrl?: string;
	/** The WebSocket URL; default: `baseUrl` with ws(s) and `/ws`. */
	wsUrl?: string;
	/** The campaign to sit at (its table's stores fill from it). */
	campaignId?: string | null;
	/** An access token, or a source that can also renew it (see `AuthSession` in http.ts). */
	auth: TokenSource | string;
	/** `auto` (default): WebSocket, SSE when the WebSocket cannot connect. */
	transport?: 'auto' | 'websocket' | 'sse';
	/** Consecutive WebSocket connections that never opened before switching to SSE (default 2). */
	sseFallbackAfter?: number;
	/** Delays between background WebSocket probes while on SSE after a fallback (default 2 s to 60 s). */
	probeBackoff?: Partial<BackoffOptions>;
	/** A WebSocket implementation (Node 20 has none built in: pass `ws`'s). */
	WebSocketImpl?: WebSocketFactory;
	fetch?: typeof fetch;
	/** Default time a request may take on a live connection (ms, default 30 s). */
	requestTimeoutMs?: number;
	backoff?: Partial<BackoffOptions>;
	/** Give up (state `offline`) after this many failed reconnects in a row (default: never). */
	maxReconnectAttempts?: number;
	/** Heartbeat interval (ms) when the bridge does not say (it does, in `session_created`). */
	heartbeatIntervalMs?: number;
	/** Most changes sent together in one frame (the bridge's `max_batch`, default 10). */
	maxBatch?: number;
	/** Minimum ms between two `cursor_move` messages (default 50). */
	cursorThrottleMs?: number;
	/** Renew the access token this long before it expires (ms; default: 60 s, at most half its life). */
	renewBeforeMs?: number;
	limits?: Partial<TableLimits>;
	random?: () => number;
	onDiceRoll?: (roll: Server.DiceRolled['data']) => void;
	onCampaignUpdate?: (update: Server.CampaignChangedData) => void;
	/** Every message from the bridge, after the client handled it. */
	onMessage?: (message: ServerMessage) => void;
}

export interface RequestOptions {
	timeoutMs?: number;
}

export interface RollOptions extends RequestOptions {
	advantage?: Advantage;
	visibility?: Visibility;
}

/** What a change returns: the ack's data (`version`, `seq`, `stroke_id`...). */
export type ChangeResult = AckData;

const CLOSE_BY_CLIENT = 1000;
/** The bridge's default `max_batch`: most messages in one frame. */
const MAX_BATCH = 10;
const CLOSE_DEAD = 4000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_HEARTBEAT_MS = 30_000;
/** Probes are cheap but not free (an authenticated socket each): a few a minute at most. */
const DEFAULT_PROBE_BACKOFF: BackoffOptions = { initialMs: 2_000, maxMs: 60_000, factor: 2 };
/** Silence longer than this many heartbeat intervals means the connection is dead. */
const SILENCE_FACTOR = 2.5;

function defaultBaseUrl(): string {
	const location = (globalThis as { location?: { origin?: string } }).location;
	if (location?.origin) return location.origin;
	throw new Error('baseUrl is required outside a browser');
}

function wsUrlOf(baseUrl: string): string {
	const url = new URL('/ws', baseUrl);
	url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
	return url.toString();
}

export class TTRPGWebSocketClient {
	readonly connectionState: Readable<ConnectionState>;
	readonly status: Readable<ConnectionStatus>;
	readonly participants: Readable<Map<string, Participant>>;
	readonly sharedState: Readable<SharedStateView>;
	readonly activityFeed: Readable<ActivityEvent[]>;
	readonly rolls: Readable<RollEntry[]>;
	readonly initiative: Readable<InitiativeView>;
	readonly canvas: Readable<StoredStroke[]>;
	readonly cursors: Readable<Map<string, CursorView>>;
	readonly campaign: Readable<Entity | null>;
	readonly characters: Readable<Map<string, Entity>>;
	readonly npcs: Readable<Map<string, Entity>>;
	readonly locations: Readable<Map<string, Entity>>;
	readonly items: Readable<Map<string, Entity>>;
	/** Notes this seat may read, by id (a withheld note never shows). */
	readonly notes: Readable<Map<string, Entity>>;
	/** The campaign's combat as the bridge sent it (`initiative` is the same, shaped for a tracker). */
	readonly combat: Readable<CombatView | null>;
	readonly errors: Readable<RefusedChange[]>;
	readonly stats: ClientStats;

	private readonly config: TTRPGClientConfig;
	private readonly auth: TokenSource;
	private readonly baseUrl: string;
	private readonly limits: TableLimits;
	private readonly backoff: BackoffOptions;
	private readonly probeBackoff: BackoffOptions;
	private readonly outbox = new Outbox();
	private readonly sequencer = new EventSequencer();

	private table: TableState;
	private readonly statusStore: Writable<ConnectionStatus>;
	private readonly participantsStore: Writable<Map<string, Participant>>;
	private readonly sharedStore: Writable<SharedStateView>;
	private readonly activityStore: Writable<ActivityEvent[]>;
	private readonly rollsStore: Writable<RollEntry[]>;
	private readonly canvasStore: Writable<StoredStroke[]>;
	private readonly cursorsStore: Writable<Map<string, CursorView>>;
	private readonly campaignStore: Writable<Entity | null>;
	private readonly charactersStore: Writable<Map<string, Entity>>;
	private readonly npcsStore: Writable<Map<string, Entity>>;
	private readonly locationsStore: Writable<Map<string, Entity>>;
	private readonly itemsStore: Writable<Map<string, Entity>>;
	private readonly notesStore: Writable<Map<string, Entity>>;
	private readonly combatStore: Writable<CombatView | null>;
	private readonly errorsStore: Writable<RefusedChange[]>;

	private transport: Transport | null = null;
	/** Bumped for every connection; callbacks of older ones are ignored. */
	private generation = 0;
	private ready = false;
	private wanted = false;
	private campaignId: string | null;
	private sessionId: string | null = null;
	private previousSessionId: string | null = null;
	private user: Server.SessionUser | null = null;
	private useSse: boolean;
	/** On SSE because the WebSocket failed (not because the config asked): probe to move back. */
	private fellBack = false;
	private probeAttempt = 0;
	private probeTimer: ReturnType<typeof setTimeout> | null = null;
	private probe: WebSocketProbe | null = null;
	private wsFailures = 0;
	/** Whether the current connection got its `session_created`. */
	private greeted = false;
	private attempt = 0;
	private retryAfterMs: number | null = null;
	private authRetried = false;
	private heartbeatMs: number;
	private lastHeard = 0;
	private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
	private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
	private renewTimer: ReturnType<typeof setTimeout> | null = null;
	private cursorTimer: ReturnType<typeof setTimeout> | null = null;
	private retryTimer: ReturnType<typeof setTimeout> | null = null;
	private presence: PresenceData | null = null;
	private cursorLastSent = 0;
	private cursorNext: Client.CursorPosition | null = null;
	private readyWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

	constructor(config: TTRPGClientConfig) {
		this.config = config;
		this.auth = typeof config.auth === 'string' ? staticToken(config.auth) : config.auth;
		this.baseUrl = config.baseUrl ?? defaultBaseUrl();
		this.limits = { ...DEFAULT_LIMITS, ...config.limits };
		this.backoff = { ...DEFAULT_BACKOFF, ...config.backoff };
		this.probeBackoff = { ...DEFAULT_PROBE_BACKOFF, ...config.probeBackoff };
		this.campaignId = config.campaignId ?? null;
		this.useSse = config.transport === 'sse';
		this.heartbeatMs = config.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
		this.stats = {
			...this.sequencer.stats,
			resent: 0,
			duplicateReplies: 0,
			reconnects: 0,
			renewals: 0,
			sseFallbacks: 0,
			websocketReturns: 0
		};
		// The sequencer counts into its own object; expose those counters live.
		for (const key of ['duplicates', 'gaps', 'resets', 'replayed'] as const) {
			Object.defineProperty(this.stats, key, { get: () => this.sequencer.stats[key], enumerable: true });
		}

		this.table = emptyTable(this.campaignId);
		this.statusStore = writable(this.snapshotStatus('disconnected', null, null));
		this.participantsStore = writable(this.table.participants);
		this.sharedStore = writable(this.table.shared);
		this.activityStore = writable(this.table.activity);
		this.rollsStore = writable(this.table.rolls);
		this.canvasStore = writable(this.table.canvas);
		this.cursorsStore = writable(this.table.cursors);
		this.campaignStore = writable(this.table.campaign);
		this.charactersStore = writable(this.table.characters);
		this.npcsStore = writable(this.table.npcs);
		this.locationsStore = writable(this.table.locations);
		this.itemsStore = writable(this.table.items);
		this.notesStore = writable(this.table.notes);
		this.combatStore = writable(this.table.combat);
		this.errorsStore = writable<RefusedChange[]>([]);

		this.status = this.statusStore;
		this.connectionState = derived(this.statusStore, (status) => status.state);
		this.participants = this.participantsStore;
		this.sharedState = this.sharedStore;
		this.activityFeed = this.activityStore;
		this.rolls = this.rollsStore;
		this.initiative = derived(this.combatStore, initiativeOf);
		this.canvas = this.canvasStore;
		this.cursors = this.cursorsStore;
		this.campaign = this.campaignStore;
		this.characters = this.charactersStore;
		this.npcs = this.npcsStore;
		this.locations = this.locationsStore;
		this.items = this.itemsStore;
		this.notes = this.notesStore;
		this.combat = this.combatStore;
		this.errors = this.errorsStore;
	}

	// -- lifecycle ----------------------------------------------------------------------------

	/** Connect (if not already) and resolve once ready: authenticated and, with a campaign, seated. */
	connect(): Promise<void> {
		const waiter = new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
		if (this.ready) this.settleWaiters(null);
		else if (!this.wanted) {
			this.wanted = true;
			this.attempt = 0;
			void this.open();
		}
		return waiter;
	}

	/** Leave on purpose: tell the bridge, close, and fail every request still waiting. */
	disconnect(reason = 'client disconnect'): void {
		this.wanted = false;
		this.clearTimers();
		const transport = this.transport;
		this.transport = null;
		this.generation += 1;
		this.ready = false;
		if (transport !== null) {
			transport.send({ id: newMessageId(), type: 'disconnect', reason });
			transport.close(CLOSE_BY_CLIENT, reason);
		}
		for (const entry of this.outbox.all()) {
			this.outbox.take(entry.id);
			this.failed(entry, new RealtimeError('disconnected', 'the client disconnected'));
		}
		this.settleWaiters(new RealtimeError('disconnected', 'the client disconnected'));
		this.publishStatus('disconnected', null, null);
	}

	/** Sit at another campaign's table (or the first one) on the live connection. */
	async joinCampaign(campaignId: string, options: RequestOptions = {}): Promise<Server.CampaignSnapshotData> {
		this.campaignId = campaignId;
		this.sequencer.reset();
		this.setTable(emptyTable(campaignId));
		if (!this.ready) {
			await this.connect();
			return this.snapshotData();
		}
		this.sequencer.beginJoin();
		try {
			const reply = await this.request({ type: 'session_create', campaign_id: campaignId }, options, {
				resend: false,
				change: false
			});
			return (reply as unknown as Server.CampaignSnapshot).data;
		} catch (error) {
			// Refused (or cut off): hold no events back waiting for a snapshot that will not come.
			this.sequencer.reset();
			throw error;
		}
	}

	/** The last campaign event applied, and its epoch: where a re-attach resumes from. */
	get position(): { lastSeq: number | null; epoch: string | null } {
		return { lastSeq: this.sequencer.lastSeq, epoch: this.sequencer.epoch };
	}

	get isReady(): boolean {
		return this.ready;
	}

	get currentUser(): Server.SessionUser | null {
		return this.user;
	}

	// -- requests -----------------------------------------------------------------------------

	/** Roll dice at the table; the roll shows as pending in `rolls` until the bridge numbers it. */
	async rollDice(
		expression: string,
		purpose?: string | null,
		options: RollOptions = {}
	): Promise<Server.RolledDice | Server.HiddenRollResult> {
		const id = newMessageId();
		const visibility = options.visibility ?? 'public';
		this.setTable({
			...this.table,
			rolls: [
				...this.table.rolls,
				pendingRoll(id, expression, purpose ?? null, visibility, this.user?.id ?? null, this.user?.display_name ?? null)
			]
		});
		const data: Client.DiceRollData = { expression, visibility, advantage: options.advantage ?? 'none' };
		if (purpose != null) data.purpose = purpose;
		try {
			const reply = await this.request({ id, type: 'dice_roll', data }, { timeoutMs: options.timeoutMs });
			const result = (reply as Server.DiceRollResult).result;
			this.setTable({ ...this.table, rolls: applyRollResult(this.table.rolls, id, result) });
			return result;
		} catch (error) {
			this.setTable({ ...this.table, rolls: dropPendingRoll(this.table.rolls, id) });
			throw error;
		}
	}

	/** Call one MCP tool; resolves with its `CallToolResult`. */
	async callTool(
		tool: string,
		params: Record<string, unknown> = {},
		options: RequestOptions = {}
	): Promise<Record<string, unknown>> {
		const reply = await this.request({ type: 'tool_call', method: tool, params }, options);
		return (reply as Server.Response).result ?? {};
	}

	/** The MCP server's tools, resources, resource templates and prompts. */
	async discover(options: RequestOptions = {}): Promise<Record<string, unknown>> {
		const reply = await this.request({ type: 'tool_discover' }, options, { resend: true, change: false });
		return (reply as Server.Response).result ?? {};
	}

	async readResource(uri: string, options: RequestOptions = {}): Promise<Record<string, unknown>> {
		const reply = await this.request({ type: 'resource_get', params: { uri } }, options, {
			resend: true,
			change: false
		});
		return (reply as Server.Response).result ?? {};
	}

	async getPrompt(
		name: string,
		args: Record<string, string> = {},
		options: RequestOptions = {}
	): Promise<Record<string, unknown>> {
		const reply = await this.request({ type: 'prompt_get', method: name, params: args }, options, {
			resend: true,
			change: false
		});
		return (reply as Server.Response).result ?? {};
	}

	/** Change the initiative (GM): an operation, or a whole new order (`set`). */
	async updateInitiative(
		update: InitiativeUpdate | CombatantInput[],
		options: RequestOptions = {}
	): Promise<ChangeResult> {
		const data: InitiativeUpdate = Array.isArray(update) ? { action: 'set', combatants: update } : update;
		return this.ackData(await this.request({ type: 'initiative_update', data }, options));
	}

	/**
	 * Change the shared state at `path`. With `previousVersion` the change is refused with
	 * `conflict` (and `data.current_version`) when someone changed the same path since.
	 */
	async updateState(
		path: (string | number)[],
		operation: StateOperation,
		value?: unknown,
		options: RequestOptions & { previousVersion?: number | null } = {}
	): Promise<ChangeResult> {
		const data: Client.StateChangeData = { path, operation, value };
		if (options.previousVersion != null) data.previous_version = options.previousVersion;
		return this.ackData(await this.request({ type: 'state_update', data }, options));
	}

	/** Replace the shared notes, based on the version this client last saw (conflicts surface). */
	setSharedNotes(text: string, previousVersion: number | null = this.table.shared.version): Promise<ChangeResult> {
		return this.updateState(['shared_notes'], 'set', text, { previousVersion });
	}

	/** Draw on the canvas: a stroke, or any `canvas_draw` action (`erase`, `clear`). */
	async draw(stroke: StrokeInput | CanvasDrawData, options: RequestOptions = {}): Promise<ChangeResult> {
		const data: CanvasDrawData = 'action' in stroke ? stroke : { action: 'stroke', stroke };
		return this.ackData(await this.request({ type: 'canvas_draw', data }, options));
	}

	erase(strokeId: string, options: RequestOptions = {}): Promise<ChangeResult> {
		return this.draw({ action: 'erase', stroke_id: strokeId }, options);
	}

	clearCanvas(options: RequestOptions = {}): Promise<ChangeResult> {
		return this.draw({ action: 'clear' }, options);
	}

	async updateCampaign(changes: CampaignChanges, options: RequestOptions = {}): Promise<Record<string, unknown>> {
		const reply = await this.request({ type: 'campaign_update', data: changes }, options);
		return (reply as Server.Response).result ?? {};
	}

	async updateCharacter(
		characterId: string,
		changes: Record<string, unknown>,
		options: RequestOptions = {}
	): Promise<Record<string, unknown>> {
		const reply = await this.request(
			{ type: 'character_update', data: { character_id: characterId, changes } },
			options
		);
		return (reply as Server.Response).result ?? {};
	}

	/**
	 * Your status at the table (online, away, typing) and the character you play. Kept and sent
	 * again after every reconnect, since a new session starts as plain "online".
	 */
	setPresence(presence: PresenceData): void {
		this.presence = { ...this.presence, ...presence };
		if (this.ready) this.transport?.send({ id: newMessageId(), type: 'presence_update', data: presence });
	}

	/**
	 * Share where your pointer is. Throttled to one message per `cursorThrottleMs` (the latest
	 * position wins); dropped while offline, since a stale cursor is worth nothing.
	 */
	moveCursor(x: number, y: number, element?: string | null): void {
		const position: Client.CursorPosition = { x, y };
		if (element != null) position.element = element;
		this.cursorNext = position;
		if (this.cursorTimer !== null) return;
		const throttle = this.config.cursorThrottleMs ?? 50;
		const wait = Math.max(0, this.cursorLastSent + throttle - Date.now());
		this.cursorTimer = setTimeout(() => {
			this.cursorTimer = null;
			const next = this.cursorNext;
			this.cursorNext = null;
			if (next === null || !this.ready) return;
			this.cursorLastSent = Date.now();
			this.transport?.send({ id: newMessageId(), type: 'cursor_move', data: { position: next } });
		}, wait);
	}

	/** Renew the access token now and swap it on the live connection (`reauthenticate`). */
	async renewToken(): Promise<void> {
		if (this.auth.refresh === undefined) throw new RealtimeError('no_refresh', 'the token source cannot renew');
		const token = await this.auth.refresh();
		if (this.ready) {
			await this.request({ type: 'reauthenticate', token }, {}, { resend: false, change: false });
			this.stats.renewals += 1;
		}
		this.scheduleRenewal();
	}

	// -- the connection -----------------------------------------------------------------------

	private async open(): Promise<void> {
		this.reconnectTimer = null;
		if (!this.wanted) return;
		const generation = ++this.generation;
		this.greeted = false;
		const kind: TransportKind = this.useSse ? 'sse' : 'websocket';
		this.publishStatus(this.attempt === 0 ? 'connecting' : 'reconnecting', kind, null);
		await this.freshTokenIfExpiring();
		if (generation !== this.generation || !this.wanted) return;
		const handlers = {
			open: () => generation === this.generation && this.onOpen(),
			message: (message: ServerMessage) => generation === this.generation && this.onMessage(message),
			close: (info: CloseInfo) => generation === this.generation && this.onClose(info)
		};
		if (kind === 'sse') {
			const fetchImpl = this.config.fetch ?? globalThis.fetch.bind(globalThis);
			const resume = this.sequencer.lastSeq !== null;
			this.transport = new SseTransport(
				{
					baseUrl: this.baseUrl,
					token: () => this.auth.accessToken(),
					campaignId: this.campaignId,
					lastSeq: resume ? this.sequencer.lastSeq : null,
					epoch: resume ? this.sequencer.epoch : null,
					fetch: fetchImpl
				},
				handlers
			);
		} else {
			const Impl = this.config.WebSocketImpl ?? (globalThis as { WebSocket?: WebSocketFactory }).WebSocket;
			if (Impl === undefined) throw new Error('no WebSocket implementation: pass WebSocketImpl');
			this.transport = new WebSocketTransport(this.config.wsUrl ?? wsUrlOf(this.baseUrl), Impl, handlers);
		}
	}

	private async freshTokenIfExpiring(): Promise<void> {
		if (this.auth.refresh === undefined) return;
		const { expiresAt } = tokenTimes(this.auth.accessToken());
		if (expiresAt !== null && expiresAt * 1000 < Date.now() + 5_000) {
			try {
				await this.auth.refresh();
			} catch {
				// The bridge will refuse the old token and say why; that ends up in the status.
			}
		}
	}

	private onOpen(): void {
		this.lastHeard = Date.now();
		this.publishStatus('connected', this.transport?.kind ?? null, null);
		if (this.transport?.kind === 'websocket') {
			// The token goes in a message, not the URL, so it stays out of access logs.
			this.transport.send({ id: newMessageId(), type: 'authenticate', token: this.auth.accessToken() });
		}
	}

	private onMessage(message: ServerMessage): void {
		this.lastHeard = Date.now();
		if (message.type === 'event_batch') {
			// A replay sent as one frame (we asked, in session_attach): each event as if alone.
			for (const event of message.events) this.onMessage(event);
			return;
		}
		if (isCampaignEvent(message)) {
			this.onEvent(message);
		} else {
			switch (message.type) {
				case 'session_created':
					this.onSessionCreated(message);
					break;
				case 'campaign_snapshot':
					this.onSnapshot(message);
					break;
				case 'response':
				case 'dice_roll_result':
				case 'ack':
					this.settle(message);
					break;
				case 'error':
					this.onError(message);
					break;
				case 'disconnect':
					this.retryAfterMs = message.retry_after ?? null;
					break;
				case 'cursor_move':
					this.setTable({ ...this.table, cursors: applyCursors(this.table.cursors, message.data) });
					break;
				case 'heartbeat':
				case 'mcp_notification':
					break;
			}
		}
		this.config.onMessage?.(message);
	}

	private onSessionCreated(message: Server.SessionCreated): void {
		this.greeted = true;
		if (this.sessionId !== null) this.previousSessionId = this.sessionId;
		this.sessionId = message.session_id ?? null;
		this.user = message.user;
		this.heartbeatMs = message.heartbeat_interval || this.heartbeatMs;
		this.authRetried = false;
		this.startHeartbeat();
		if (this.campaignId === null) {
			this.becomeReady();
			return;
		}
		this.sequencer.beginJoin();
		if (this.transport?.kind === 'sse') return; // the stream's URL carried the join
		const id = newMessageId();
		if (this.sequencer.lastSeq !== null) {
			const attach: Client.SessionAttach = {
				id,
				type: 'session_attach',
				campaign_id: this.campaignId,
				last_seq: this.sequencer.lastSeq,
				batch: true
			};
			if (this.previousSessionId !== null) attach.session_id = this.previousSessionId;
			if (this.sequencer.epoch !== null) attach.epoch = this.sequencer.epoch;
			this.transport?.send({ ...attach });
		} else {
			this.transport?.send({ id, type: 'session_create', campaign_id: this.campaignId });
		}
		this.publishStatus('connected', this.transport?.kind ?? null, null);
	}

	private onSnapshot(message: Server.CampaignSnapshot): void {
		const outcome = this.sequencer.snapshot(message.data);
		let table = applySnapshot(this.table, message.data, this.user?.id ?? null, this.limits);
		for (const event of outcome.apply) table = applyEvent(table, event, this.user?.id ?? null, this.limits);
		this.setTable(table);
		for (const event of outcome.apply) this.notify(event);
		if (message.request_id != null) this.settle(message as unknown as Reply);
		if (outcome.gap) {
			this.drop('gap in the event sequence');
			return;
		}
		this.becomeReady();
	}

	private onEvent(event: CampaignEvent): void {
		const offer = this.sequencer.offer(event);
		if (offer.kind === 'gap') {
			// Something was lost on the way: re-attach from the last seq applied.
			this.drop(`missing event ${offer.expected}`);
			return;
		}
		if (offer.kind !== 'apply') return;
		this.setTable(applyEvent(this.table, event, this.user?.id ?? null, this.limits));
		this.notify(event);
	}

	private notify(event: CampaignEvent): void {
		if (event.type === 'dice_roll') this.config.onDiceRoll?.(event.data);
		if (event.type === 'campaign_update') this.config.onCampaignUpdate?.(event.data);
	}

	private onError(message: Server.ErrorMessage): void {
		if (message.request_id != null && this.outbox.get(message.request_id) !== undefined) {
			this.settle(message);
			return;
		}
		const error = RealtimeError.from(message.error);
		if (this.sequencer.isJoining) {
			// The join itself was refused (not a member, table full...): nothing to wait for.
			this.sequencer.reset();
			this.settleWaiters(error);
			this.publishStatus(this.ready ? 'authenticated' : 'connected', this.transport?.kind ?? null, error);
			return;
		}
		this.refused(message.request_id ?? '', 'error', error);
		this.publishStatus(this.currentState(), this.transport?.kind ?? null, error);
	}

	private onClose(info: CloseInfo): void {
		const kind = this.transport?.kind ?? null;
		this.transport = null;
		this.ready = false;
		this.stopHeartbeat();
		for (const entry of this.outbox.all()) {
			if (entry.timer !== null) clearTimeout(entry.timer);
			entry.timer = null;
			if (!entry.resend) {
				this.outbox.take(entry.id);
				this.failed(entry, new RealtimeError('disconnected', 'the connection closed before the reply'));
			}
		}
		if (!this.wanted) return;
		const error = { code: codeOf(info), message: info.reason || `closed (${info.code})` };
		// A WebSocket that never opened, or was cut before the bridge said hello (a proxy that
		// drops upgraded connections), counts towards falling back to SSE.
		if (kind === 'websocket' && (!info.opened || !this.greeted) && !isAuthFailure(info)) {
			this.wsFailures += 1;
			if (this.config.transport !== 'websocket' && this.wsFailures >= (this.config.sseFallbackAfter ?? 2)) {
				this.useSse = true;
				this.fellBack = true;
				this.stats.sseFallbacks += 1;
			}
		}
		if (isAuthFailure(info)) {
			if (this.auth.refresh !== undefined && !this.authRetried) {
				this.authRetried = true;
				void this.auth.refresh().then(
					() => this.scheduleReconnect(0, error),
					() => this.giveUp(error)
				);
				this.publishStatus('reconnecting', kind, error);
				return;
			}
			this.giveUp(error);
			return;
		}
		const max = this.config.maxReconnectAttempts ?? Number.POSITIVE_INFINITY;
		if (this.attempt >= max) {
			this.giveUp(error);
			return;
		}
		const delay = this.retryAfterMs ?? backoffDelay(this.attempt, this.backoff, this.config.random);
		this.retryAfterMs = null;
		this.attempt += 1;
		this.stats.reconnects += 1;
		this.scheduleReconnect(delay, error);
	}

	private scheduleReconnect(delay: number, error: { code: string; message: string } | null): void {
		if (!this.wanted) return;
		if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
		this.reconnectTimer = setTimeout(() => void this.open(), delay);
		this.publishStatus('reconnecting', this.useSse ? 'sse' : 'websocket', error, Date.now() + delay);
	}

	private giveUp(error: { code: string; message: string }): void {
		this.wanted = false;
		this.clearTimers();
		this.settleWaiters(new RealtimeError(error.code, error.message));
		this.publishStatus('offline', null, error);
	}

	/** End the live connection from this side (dead or out of step) and reconnect as after any drop. */
	private drop(reason: string): void {
		this.transport?.close(CLOSE_DEAD, reason);
	}

	private becomeReady(): void {
		this.ready = true;
		this.attempt = 0;
		if (this.transport?.kind === 'websocket') {
			this.wsFailures = 0;
			this.probeAttempt = 0;
		} else if (this.fellBack) {
			this.scheduleProbe();
		}
		this.publishStatus('authenticated', this.transport?.kind ?? null, null);
		if (this.presence !== null && this.campaignId !== null) {
			this.transport?.send({ id: newMessageId(), type: 'presence_update', data: this.presence });
		}
		this.pump();
		this.scheduleRenewal();
		this.settleWaiters(null);
	}

	// -- moving back from SSE to the WebSocket -------------------------------------------------

	private scheduleProbe(): void {
		if (this.probeTimer !== null || this.probe !== null || !this.wanted) return;
		const delay = backoffDelay(this.probeAttempt, this.probeBackoff, this.config.random);
		this.probeAttempt += 1;
		this.probeTimer = setTimeout(() => void this.runProbe(), delay);
	}

	private async runProbe(): Promise<void> {
		this.probeTimer = null;
		const Impl = this.config.WebSocketImpl ?? (globalThis as { WebSocket?: WebSocketFactory }).WebSocket;
		if (!this.wanted || !this.fellBack || Impl === undefined) return;
		this.probe = probeWebSocket(this.config.wsUrl ?? wsUrlOf(this.baseUrl), Impl, this.auth.accessToken());
		const ok = await this.probe.result;
		this.probe = null;
		if (!this.wanted || !this.fellBack) return;
		if (!ok) {
			if (this.ready) this.scheduleProbe();
			return; // not ready: the next becomeReady on SSE schedules it
		}
		// The WebSocket gets through again: end the SSE stream; the reconnect that follows opens a
		// WebSocket and re-attaches from the last seq (see onClose and onSessionCreated).
		this.useSse = false;
		this.fellBack = false;
		this.wsFailures = 0;
		this.stats.websocketReturns += 1;
		this.retryAfterMs = 0;
		this.drop('moving back to the WebSocket');
	}

	private stopProbing(): void {
		if (this.probeTimer !== null) clearTimeout(this.probeTimer);
		this.probeTimer = null;
		this.probe?.cancel();
		this.probe = null;
	}

	// -- requests and the outbox --------------------------------------------------------------

	private request(
		message: Record<string, unknown> & { type: string; id?: string },
		options: RequestOptions = {},
		kind: { resend: boolean; change: boolean } = { resend: true, change: true }
	): Promise<Reply> {
		const id = message.id ?? newMessageId();
		return new Promise<Reply>((resolve, reject) => {
			const entry: OutboxEntry = {
				id,
				message: { ...message, id },
				resend: kind.resend,
				change: kind.change,
				timeoutMs: options.timeoutMs ?? this.config.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS,
				sentOn: null,
				notBefore: 0,
				sends: 0,
				resolve,
				reject,
				timer: null
			};
			this.outbox.add(entry);
			this.publishStatus(this.currentState(), this.transport?.kind ?? null, this.currentError());
			this.pump();
		});
	}

	/**
	 * Send what waits. Reads go out at once and may run side by side. Changes go out in the order
	 * they were made, one frame at a time: the next frame waits for every reply to the previous
	 * one, and the changes that queued up meanwhile travel together as one batch (a JSON array,
	 * which the bridge handles in order). The bridge handles separate frames concurrently, so
	 * this is what keeps "applied in the order made" true, across reconnects too.
	 */
	private pump(): void {
		if (!this.ready || this.transport === null) return;
		const now = Date.now();
		const unsent = this.outbox.unsentOn(this.generation);
		for (const entry of unsent) if (!entry.change && entry.notBefore <= now) this.transmit([entry]);
		const inFlight = this.outbox.all().some((entry) => entry.change && entry.sentOn === this.generation);
		if (inFlight) return;
		const changes = unsent.filter((entry) => entry.change);
		// A change told to wait (rate_limited) holds back every change made after it.
		const held = changes.findIndex((entry) => entry.notBefore > now);
		const batch = changes.slice(0, held === -1 ? undefined : held).slice(0, this.config.maxBatch ?? MAX_BATCH);
		if (batch.length > 0) this.transmit(batch);
		else if (held !== -1) this.wakeAt(changes[held]!.notBefore);
		for (const entry of unsent) if (!entry.change && entry.notBefore > now) this.wakeAt(entry.notBefore);
	}

	/** Pump again at `time` (timers may fire a little early, so this re-arms until it is due). */
	private wakeAt(time: number): void {
		if (this.retryTimer !== null) return;
		this.retryTimer = setTimeout(() => {
			this.retryTimer = null;
			this.pump();
		}, Math.max(1, time - Date.now() + 1));
	}

	private transmit(entries: OutboxEntry[]): void {
		if (this.transport === null) return;
		for (const entry of entries) {
			if (entry.sends > 0) this.stats.resent += 1;
			entry.sends += 1;
			entry.sentOn = this.generation;
			if (entry.timer !== null) clearTimeout(entry.timer);
			entry.timer = setTimeout(() => {
				if (this.outbox.take(entry.id) === undefined) return;
				this.failed(
					entry,
					new RealtimeError('timeout', `${entry.message.type} got no reply in ${entry.timeoutMs} ms`)
				);
				this.pump();
			}, entry.timeoutMs);
		}
		const [only] = entries;
		this.transport.send(entries.length === 1 && only !== undefined ? only.message : entries.map((entry) => entry.message));
	}

	private settle(reply: Reply | Server.CampaignSnapshot): void {
		if (reply.request_id == null) return;
		const waiting = this.outbox.get(reply.request_id);
		if (waiting === undefined) return; // a heartbeat's ack, or a reply to a request given up on
		const error = 'error' in reply ? reply.error : null;
		if (error?.code === 'rate_limited' && waiting.resend) {
			// Nothing happened: send it again (same id, same place in line) once the bridge allows.
			const seconds = Number((error.data as { retry_after?: unknown } | null)?.retry_after ?? 1);
			const delay = Math.max(50, seconds * 1000);
			if (waiting.timer !== null) clearTimeout(waiting.timer);
			waiting.timer = null;
			waiting.sentOn = null;
			waiting.notBefore = Date.now() + delay;
			this.pump();
			return;
		}
		const entry = this.outbox.take(reply.request_id);
		if (entry === undefined) return;
		if ('duplicate' in reply && reply.duplicate) this.stats.duplicateReplies += 1;
		if (error != null) {
			this.failed(entry, RealtimeError.from(error));
		} else {
			entry.resolve(reply as Reply);
		}
		this.publishStatus(this.currentState(), this.transport?.kind ?? null, this.currentError());
		this.pump();
	}

	private failed(entry: OutboxEntry, error: RealtimeError): void {
		if (entry.change) this.refused(entry.id, entry.message.type, error);
		entry.reject(error);
		this.publishStatus(this.currentState(), this.transport?.kind ?? null, this.currentError());
	}

	private refused(requestId: string, type: string, error: RealtimeError): void {
		this.errorsStore.update((list) =>
			[
				...list,
				{ requestId, type, code: error.code, message: error.message, data: error.data, at: Date.now() }
			].slice(-20)
		);
	}

	private ackData(reply: Reply): ChangeResult {
		return (reply as Server.Ack).data ?? {};
	}

	// -- timers -------------------------------------------------------------------------------

	private startHeartbeat(): void {
		this.stopHeartbeat();
		const interval = this.heartbeatMs;
		this.heartbeatTimer = setInterval(() => {
			if (Date.now() - this.lastHeard > interval * SILENCE_FACTOR) {
				this.drop('no message from the bridge for too long');
				return;
			}
			// An SSE session has no idle timeout, and a POST per beat would be waste.
			if (this.transport?.kind === 'websocket') {
				this.transport.send({ id: newMessageId(), type: 'heartbeat', timestamp: Date.now() });
			}
		}, interval);
	}

	private stopHeartbeat(): void {
		if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
		this.heartbeatTimer = null;
	}

	private scheduleRenewal(): void {
		if (this.renewTimer !== null) clearTimeout(this.renewTimer);
		this.renewTimer = null;
		if (this.auth.refresh === undefined || !this.wanted) return;
		const delay = renewalDelay(this.auth.accessToken(), this.config.renewBeforeMs);
		if (delay === null) return;
		this.renewTimer = setTimeout(() => {
			this.renewTimer = null;
			this.renewToken().catch((error: unknown) => {
				const failure = error instanceof RealtimeError ? error : new RealtimeError('renewal_failed', String(error));
				this.publishStatus(this.currentState(), this.transport?.kind ?? null, failure);
				// Try again a little later; the bridge keeps the connection until the token is used expired.
				if (this.wanted) this.renewTimer = setTimeout(() => this.scheduleRenewal(), 5_000);
			});
		}, delay);
	}

	private clearTimers(): void {
		this.stopHeartbeat();
		this.stopProbing();
		for (const timer of [this.reconnectTimer, this.renewTimer, this.cursorTimer, this.retryTimer]) {
			if (timer !== null) clearTimeout(timer);
		}
		this.retryTimer = null;
		this.reconnectTimer = null;
		this.renewTimer = null;
		this.cursorTimer = null;
	}

	// -- stores -------------------------------------------------------------------------------

	private setTable(next: TableState): void {
		const previous = this.table;
		this.table = next;
		if (next.participants !== previous.participants) this.participantsStore.set(next.participants);
		if (next.shared !== previous.shared) this.sharedStore.set(next.shared);
		if (next.activity !== previous.activity) this.activityStore.set(next.activity);
		if (next.rolls !== previous.rolls) this.rollsStore.set(next.rolls);
		if (next.canvas !== previous.canvas) this.canvasStore.set(next.canvas);
		if (next.cursors !== previous.cursors) this.cursorsStore.set(next.cursors);
		if (next.campaign !== previous.campaign) this.campaignStore.set(next.campaign);
		if (next.characters !== previous.characters) this.charactersStore.set(next.characters);
		if (next.npcs !== previous.npcs) this.npcsStore.set(next.npcs);
		if (next.locations !== previous.locations) this.locationsStore.set(next.locations);
		if (next.items !== previous.items) this.itemsStore.set(next.items);
		if (next.notes !== previous.notes) this.notesStore.set(next.notes);
		if (next.combat !== previous.combat) this.combatStore.set(next.combat);
		if (next.role !== previous.role) {
			this.publishStatus(this.currentState(), this.transport?.kind ?? null, this.currentError());
		}
	}

	private snapshotData(): Server.CampaignSnapshotData {
		return {
			campaign_id: this.table.campaignId ?? '',
			role: this.table.role ?? 'spectator',
			epoch: this.sequencer.epoch ?? '',
			seq: this.sequencer.lastSeq ?? 0,
			recovered: false,
			state: this.table.shared,
			canvas: this.table.canvas,
			participants: [...this.table.participants.values()]
		};
	}

	private status_: ConnectionStatus | null = null;

	private currentState(): ConnectionState {
		return this.status_?.state ?? 'disconnected';
	}

	private currentError(): { code: string; message: string } | null {
		return this.status_?.error ?? null;
	}

	private snapshotStatus(
		state: ConnectionState,
		transport: TransportKind | null,
		error: { code: string; message: string } | null,
		retryAt: number | null = null
	): ConnectionStatus {
		return {
			state,
			transport,
			pending: this.outbox.changes,
			attempt: this.attempt,
			retryAt,
			error: error === null ? null : { code: error.code, message: error.message },
			sessionId: this.sessionId,
			user: this.user,
			campaignId: this.campaignId,
			role: this.table.role
		};
	}

	private publishStatus(
		state: ConnectionState,
		transport: TransportKind | null,
		error: { code: string; message: string } | null,
		retryAt: number | null = null
	): void {
		const next = this.snapshotStatus(state, transport, error, retryAt ?? (state === 'reconnecting' ? this.status_?.retryAt ?? null : null));
		const previous = this.status_;
		if (previous !== null && JSON.stringify(previous) === JSON.stringify(next)) return;
		this.status_ = next;
		this.statusStore.set(next);
	}

	private settleWaiters(error: Error | null): void {
		const waiters = this.readyWaiters;
		this.readyWaiters = [];
		for (const waiter of waiters) {
			if (error === null) waiter.resolve();
			else waiter.reject(error);
		}
	}
}

function codeOf(info: CloseInfo): string {
	const match = /^([a-z_]+)(?::|$)/.exec(info.reason);
	if (match?.[1] !== undefined) return match[1];
	if (info.code === 1012) return 'shutting_down';
	if (info.code === 1013) return 'too_slow';
	if (info.code === 1001) return 'idle_timeout';
	return info.opened ? 'connection_lost' : 'connection_failed';
}

function isAuthFailure(info: CloseInfo): boolean {
	if (info.code === 401) return true;
	if (info.code !== 1008) return false;
	return /^(invalid_token|token_expired|unauthenticated)/.test(info.reason);
}

/** A human line for the connection corner: "Reconnecting... 3 changes waiting". */
export function describeStatus(status: ConnectionStatus): string {
	const waiting =
		status.pending > 0 ? ` ${status.pending} change${status.pending === 1 ? '' : 's'} waiting` : '';
	switch (status.state) {
		case 'authenticated':
			return status.transport === 'sse' ? `Connected (SSE)${waiting ? ',' + waiting : ''}` : `Connected${waiting ? ',' + waiting : ''}`;
		case 'connecting':
		case 'connected':
			return `Connecting...${waiting}`;
		case 'reconnecting':
			return `Reconnecting...${waiting}`;
		case 'offline':
			return `Offline${status.error ? ` (${status.error.message})` : ''}.${waiting}`;
		case 'disconnected':
			return 'Disconnected';
	}
}
