/**
 * The realtime client of the ttrpg-bridge table, usable on its own (no UI framework needed).
 *
 * `createTTRPGWebSocket(config)` gives the spike's API: the client, its stores (`$store` works in
 * Svelte components), derived conveniences, and the actions bound to it.
 */
import { TTRPGWebSocketClient, type TTRPGClientConfig } from './client';
import { derived } from './store';

export {
	TTRPGWebSocketClient,
	describeStatus,
	type ChangeResult,
	type ClientStats,
	type ConnectionState,
	type ConnectionStatus,
	type RefusedChange,
	type RequestOptions,
	type RollOptions,
	type TTRPGClientConfig
} from './client';
export { AuthSession, BridgeApi, BridgeApiError } from './http';
export type * from './http';
export { RealtimeError, isCampaignEvent, newMessageId } from './messages';
export type * from './messages';
export { derived, get, writable, type Readable, type Writable } from './store';
export type { ActivityEvent, CursorView, Entity, InitiativeView, RollDie, RollEntry } from './table';
export { staticToken, tokenTimes, type TokenSource } from './tokens';
export type { WebSocketFactory, WebSocketLike } from './transport';
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';

export type TTRPGWebSocket = ReturnType<typeof createTTRPGWebSocket>;

export function createTTRPGWebSocket(config: TTRPGClientConfig) {
	const client = new TTRPGWebSocketClient(config);
	const isConnected = derived(client.connectionState, (state) => state === 'authenticated');
	const participantList = derived(client.participants, (participants) => [...participants.values()]);
	const onlineCount = derived(
		client.participants,
		(participants) => [...participants.values()].filter((p) => p.status !== 'away').length
	);
	return {
		client,
		connectionState: client.connectionState,
		status: client.status,
		participants: client.participants,
		sharedState: client.sharedState,
		activityFeed: client.activityFeed,
		rolls: client.rolls,
		initiative: client.initiative,
		canvas: client.canvas,
		cursors: client.cursors,
		campaign: client.campaign,
		characters: client.characters,
		errors: client.errors,
		isConnected,
		participantList,
		onlineCount,
		connect: () => client.connect(),
		disconnect: (reason?: string) => client.disconnect(reason),
		joinCampaign: (...args: Parameters<TTRPGWebSocketClient['joinCampaign']>) => client.joinCampaign(...args),
		rollDice: (...args: Parameters<TTRPGWebSocketClient['rollDice']>) => client.rollDice(...args),
		callTool: (...args: Parameters<TTRPGWebSocketClient['callTool']>) => client.callTool(...args),
		updateInitiative: (...args: Parameters<TTRPGWebSocketClient['updateInitiative']>) =>
			client.updateInitiative(...args),
		updateState: (...args: Parameters<TTRPGWebSocketClient['updateState']>) => client.updateState(...args),
		setSharedNotes: (...args: Parameters<TTRPGWebSocketClient['setSharedNotes']>) =>
			client.setSharedNotes(...args),
		draw: (...args: Parameters<TTRPGWebSocketClient['draw']>) => client.draw(...args),
		erase: (...args: Parameters<TTRPGWebSocketClient['erase']>) => client.erase(...args),
		clearCanvas: (...args: Parameters<TTRPGWebSocketClient['clearCanvas']>) => client.clearCanvas(...args),
		updateCampaign: (...args: Parameters<TTRPGWebSocketClient['updateCampaign']>) =>
			client.updateCampaign(...args),
		updateCharacter: (...args: Parameters<TTRPGWebSocketClient['updateCharacter']>) =>
			client.updateCharacter(...args),
		setPresence: (...args: Parameters<TTRPGWebSocketClient['setPresence']>) => client.setPresence(...args),
		moveCursor: (...args: Parameters<TTRPGWebSocketClient['moveCursor']>) => client.moveCursor(...args)
	};
}
