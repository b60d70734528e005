/**
 * The bridge's HTTP API for the app: accounts and tokens (`/api/auth/...`) and campaigns,
 * invites and members (`/api/campaigns/...`). Errors come back as `BridgeApiError` with the
 * bridge's `{code, message, data}` and the HTTP status.
 *
 * `AuthSession` holds a token pair, renews the access token through the refresh token (which
 * rotates: each works once, so concurrent renewals share one request), and is the token source
 * the realtime client renews through.
 */
import type * as Http from '../protocol/http';
import type { Role } from './messages';
import type { TokenSource } from './tokens';

// The bodies, generated from `ttrpg-bridge schema --messages http`.
export type UserInfo = Http.UserInfo;
export type TokenPair = Http.TokenPair;
/**
 * A new account: `username` (the documented field) or `name` (the older spelling, still
 * accepted here); it goes out as `username`.
 */
export type RegisterRequest = Omit<Http.RegisterRequest, 'username'> &
	({ username: string; name?: never } | { name: string; username?: never });
export type CampaignSummary = Http.CampaignSummary;
export type CampaignDetail = Http.CampaignDetail;
export type MemberView = Http.MemberView;
export type CreateCampaignRequest = Http.CreateCampaignRequest;
export type CreateInviteRequest = Http.CreateInviteRequest;
export type InviteView = Http.InviteView;
export type AuditPage = Http.AuditPage;
export type ConsentRequestView = Http.ConsentRequestView;
export type ConsentDecision = Http.ConsentDecision;
export type ConsentOutcome = Http.ConsentOutcome;
export type AgentView = Http.AgentView;

export class BridgeApiError extends Error {
	readonly status: number;
	readonly code: string;
	readonly data: Record<string, unknown> | null;

	constructor(status: number, code: string, message: string, data: Record<string, unknown> | null = null) {
		super(message);
		this.name = 'BridgeApiError';
		this.status = status;
		this.code = code;
		this.data = data;
	}
}

export interface BridgeApiOptions {
	/** The bridge's origin; default: the page's origin. */
	baseUrl?: string;
	fetch?: typeof fetch;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** Plain calls to the bridge's REST routes; the caller passes the token each needs. */
export class BridgeApi {
	readonly baseUrl: string;
	private readonly fetchImpl: typeof fetch;

	constructor(options: BridgeApiOptions = {}) {
		const location = (globalThis as { location?: { origin?: string } }).location;
		const base = options.baseUrl ?? location?.origin;
		if (base === undefined) throw new Error('baseUrl is required outside a browser');
		this.baseUrl = base;
		this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
	}

	async call<T>(method: Method, path: string, options: { token?: string; body?: unknown } = {}): Promise<T> {
		const headers: Record<string, string> = { Accept: 'application/json' };
		if (options.token !== undefined) headers['Authorization'] = `Bearer ${options.token}`;
		if (options.body !== undefined) headers['Content-Type'] = 'application/json';
		const init: RequestInit = { method, headers };
		if (options.body !== undefined) init.body = JSON.stringify(options.body);
		let response: Response;
		try {
			response = await this.fetchImpl(new URL(path, this.baseUrl), init);
		} catch (error) {
			throw new BridgeApiError(0, 'network_error', `the bridge cannot be reached: ${String(error)}`);
		}
		if (response.status === 204) return undefined as T;
		const text = await response.text();
		let body: unknown = null;
		try {
			body = text ? JSON.parse(text) : null;
		} catch {
			body = null;
		}
		if (!response.ok) {
			const error = (body as { error?: { code?: string; message?: string; data?: unknown } } | null)?.error;
			throw new BridgeApiError(
				response.status,
				error?.code ?? `http_${response.status}`,
				error?.message ?? (text || response.statusText),
				(error?.data as Record<string, unknown> | null | undefined) ?? null
			);
		}
		return body as T;
	}

	// -- accounts -----------------------------------------------------------------------------

	register(request: RegisterRequest): Promise<TokenPair> {
		const { name, username, ...rest } = request;
		const body: Http.RegisterRequest = { ...rest, username: username ?? name ?? '' };
		return this.call('POST', '/api/auth/register', { body });
	}

	login(username: string, password: string): Promise<TokenPair> {
		const body: Http.LoginRequest = { username, password };
		return this.call('POST', '/api/auth/login', { body });
	}

	/** A new pair for a refresh token (which is then spent). */
	refresh(refreshToken: string): Promise<TokenPair> {
		return this.call('POST', '/api/auth/refresh', { token: refreshToken });
	}

	/** Revoke a refresh token (and its family). */
	logout(refreshToken: string): Promise<void> {
		return this.call('POST', '/api/auth/logout', { token: refreshToken });
	}

	me(accessToken: string): Promise<UserInfo> {
		return this.call('GET', '/api/auth/me', { token: accessToken });
	}

	// -- campaigns ----------------------------------------------------------------------------

	async listCampaigns(accessToken: string): Promise<CampaignSummary[]> {
		const list = await this.call<Http.CampaignList>('GET', '/api/campaigns', { token: accessToken });
		return list.campaigns;
	}

	createCampaign(accessToken: string, request: CreateCampaignRequest): Promise<CampaignDetail> {
		return this.call('POST', '/api/campaigns', { token: accessToken, body: request });
	}

	getCampaign(accessToken: string, campaignId: string): Promise<CampaignDetail> {
		return this.call('GET', `/api/campaigns/${encodeURIComponent(campaignId)}`, { token: accessToken });
	}

	createInvite(accessToken: string, campaignId: string, request: CreateInviteRequest = {}): Promise<InviteView> {
		return this.call('POST', `/api/campaigns/${encodeURIComponent(campaignId)}/invites`, {
			token: accessToken,
			body: request
		});
	}

	joinByCode(accessToken: string, code: string): Promise<CampaignSummary> {
		const body: Http.JoinRequest = { code };
		return this.call('POST', '/api/campaigns/join', { token: accessToken, body });
	}

	changeRole(accessToken: string, campaignId: string, userId: string, role: Role): Promise<MemberView> {
		return this.call(
			'PATCH',
			`/api/campaigns/${encodeURIComponent(campaignId)}/members/${encodeURIComponent(userId)}`,
			{ token: accessToken, body: { role } satisfies Http.RoleChange }
		);
	}

	removeMember(accessToken: string, campaignId: string, userId: string): Promise<void> {
		return this.call(
			'DELETE',
			`/api/campaigns/${encodeURIComponent(campaignId)}/members/${encodeURIComponent(userId)}`,
			{ token: accessToken }
		);
	}

	audit(
		accessToken: string,
		campaignId: string,
		query: { limit?: number; before?: number } = {}
	): Promise<AuditPage> {
		const params = new URLSearchParams();
		if (query.limit !== undefined) params.set('limit', String(query.limit));
		if (query.before !== undefined) params.set('before', String(query.before));
		const suffix = params.size > 0 ? `?${params.toString()}` : '';
		return this.call('GET', `/api/campaigns/${encodeURIComponent(campaignId)}/audit${suffix}`, {
			token: accessToken
		});
	}

	/** A pending authorization request of an MCP client (the consent page's `?request=`). */
	consentRequest(accessToken: string, requestId: string): Promise<ConsentRequestView> {
		return this.call('GET', `/api/oauth/consent?request=${encodeURIComponent(requestId)}`, { token: accessToken });
	}

	/** Approve (campaign and role) or deny it; the answer says where to send the browser. */
	decideConsent(accessToken: string, decision: ConsentDecision): Promise<ConsentOutcome> {
		return this.call('POST', '/api/oauth/consent', { token: accessToken, body: decision });
	}

	/** The agents the caller has authorized. */
	async myAgents(accessToken: string): Promise<AgentView[]> {
		return (await this.call<Http.AgentList>('GET', '/api/me/agents', { token: accessToken })).agents;
	}

	/** Revoke an agent the caller authorized: its tokens stop working at once. */
	revokeMyAgent(accessToken: string, agentId: string): Promise<void> {
		return this.call('DELETE', `/api/me/agents/${encodeURIComponent(agentId)}`, { token: accessToken });
	}

	/** The agents authorized in a campaign (GM only). */
	async campaignAgents(accessToken: string, campaignId: string): Promise<AgentView[]> {
		const path = `/api/campaigns/${encodeURIComponent(campaignId)}/authorized-agents`;
		return (await this.call<Http.AgentList>('GET', path, { token: accessToken })).agents;
	}

	/** Revoke an agent in a campaign (GM only). */
	revokeCampaignAgent(accessToken: string, campaignId: string, agentId: string): Promise<void> {
		const path = `/api/campaigns/${encodeURIComponent(campaignId)}/authorized-agents/${encodeURIComponent(agentId)}`;
		return this.call('DELETE', path, { token: accessToken });
	}
}

/**
 * A signed-in user's tokens. Renews the access token through the refresh token, once at a time
 * (the refresh token rotates), retries a campaign call once after `token_expired`, and tells
 * listeners about every new pair so the app can keep the refresh token across reloads.
 */
export class AuthSession implements TokenSource {
	private pair: TokenPair;
	private renewing: Promise<string> | null = null;
	private readonly listeners = new Set<(pair: TokenPair | null) => void>();

	constructor(
		readonly api: BridgeApi,
		pair: TokenPair
	) {
		this.pair = pair;
	}

	static async login(api: BridgeApi, username: string, password: string): Promise<AuthSession> {
		return new AuthSession(api, await api.login(username, password));
	}

	static async register(api: BridgeApi, request: RegisterRequest): Promise<AuthSession> {
		return new AuthSession(api, await api.register(request));
	}

	/** A session from a refresh token kept from an earlier visit. */
	static async resume(api: BridgeApi, refreshToken: string): Promise<AuthSession> {
		return new AuthSession(api, await api.refresh(refreshToken));
	}

	get user(): UserInfo {
		return this.pair.user_info;
	}

	get refreshToken(): string {
		return this.pair.refresh_token;
	}

	accessToken(): string {
		return this.pair.access_token;
	}

	/** A new access token; concurrent callers share one refresh. */
	refresh(): Promise<string> {
		if (this.renewing === null) {
			this.renewing = this.api
				.refresh(this.pair.refresh_token)
				.then((pair) => {
					this.pair = pair;
					for (const listener of this.listeners) listener(pair);
					return pair.access_token;
				})
				.finally(() => {
					this.renewing = null;
				});
		}
		return this.renewing;
	}

	/** Called with every new pair (and null on logout). */
	onChange(listener: (pair: TokenPair | null) => void): () => void {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}

	async logout(): Promise<void> {
		try {
			await this.api.logout(this.pair.refresh_token);
		} finally {
			for (const listener of this.listeners) listener(null);
		}
	}

	/** Run an API call with the access token, renewing it once if the bridge says it expired. */
	async withToken<T>(call: (token: string) => Promise<T>): Promise<T> {
		try {
			return await call(this.accessToken());
		} catch (error) {
			if (error instanceof BridgeApiError && error.code === 'token_expired') {
				return call(await this.refresh());
			}
			throw error;
		}
	}

	listCampaigns(): Promise<CampaignSummary[]> {
		return this.withToken((token) => this.api.listCampaigns(token));
	}

	createCampaign(request: CreateCampaignRequest): Promise<CampaignDetail> {
		return this.withToken((token) => this.api.createCampaign(token, request));
	}

	getCampaign(campaignId: string): Promise<CampaignDetail> {
		return this.withToken((token) => this.api.getCampaign(token, campaignId));
	}

	createInvite(campaignId: string, request: CreateInviteRequest = {}): Promise<InviteView> {
		return this.withToken((token) => this.api.createInvite(token, campaignId, request));
	}

	joinByCode(code: string): Promise<CampaignSummary> {
		return this.withToken((token) => this.api.joinByCode(token, code));
	}

	changeRole(campaignId: string, userId: string, role: Role): Promise<MemberView> {
		return this.withToken((token) => this.api.changeRole(token, campaignId, userId, role));
	}

	removeMember(campaignId: string, userId: string): Promise<void> {
		return this.withToken((token) => this.api.removeMember(token, campaignId, userId));
	}

	audit(campaignId: string, query: { limit?: number; before?: number } = {}): Promise<AuditPage> {
		return this.withToken((token) => this.api.audit(token, campaignId, query));
	}
}
