/**
 * The bridge's HTTP API as the app uses it: accounts and campaigns. Every failure is an
 * `ApiError` carrying the bridge's `{code, message, data}`, so a form can say why in words.
 */

export interface UserInfo {
	id: string;
	name: string;
	display_name: string;
}

export interface TokenPair {
	access_token: string;
	refresh_token: string;
	token_type: 'bearer';
	expires_in: number;
	user_info: UserInfo;
}

export type Role = 'gm' | 'player' | 'spectator';

export interface CampaignSummary {
	id: string;
	name: string;
	role: Role;
	member_count: number;
	created_at: string;
	archived: boolean;
}

export interface Member {
	user_id: string;
	name: string;
	display_name: string;
	role: Role;
	joined_at: string;
}

export interface CampaignDetail extends CampaignSummary {
	created_by: string | null;
	members: Member[];
}

export interface Invite {
	code: string;
	campaign_id: string;
	role: Role;
	expires_at: string;
	uses_left: number;
}

export class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly code: string,
		message: string,
		readonly data: unknown = null
	) {
		super(message);
		this.name = 'ApiError';
	}
}

async function call<T>(method: string, path: string, options: { body?: unknown; token?: string } = {}): Promise<T> {
	const headers: Record<string, string> = {};
	if (options.body !== undefined) headers['Content-Type'] = 'application/json';
	if (options.token) headers.Authorization = `Bearer ${options.token}`;
	let response: Response;
	try {
		response = await fetch(path, {
			method,
			headers,
			body: options.body === undefined ? undefined : JSON.stringify(options.body)
		});
	} catch {
		throw new ApiError(0, 'offline', 'The bridge cannot be reached. Check your connection.');
	}
	if (response.status === 204) return undefined as T;
	const payload: unknown = await response.json().catch(() => null);
	if (!response.ok) {
		const error = (payload as { error?: { code?: string; message?: string; data?: unknown } } | null)?.error;
		throw new ApiError(
			response.status,
			error?.code ?? 'http_error',
			error?.message ?? `The bridge answered ${response.status}.`,
			error?.data ?? null
		);
	}
	return payload as T;
}

export const api = {
	register: (name: string, password: string) =>
		call<TokenPair>('POST', '/api/auth/register', { body: { name, password } }),
	login: (name: string, password: string) =>
		call<TokenPair>('POST', '/api/auth/login', { body: { name, password } }),
	refresh: (refreshToken: string) => call<TokenPair>('POST', '/api/auth/refresh', { token: refreshToken }),
	logout: (refreshToken: string) => call<void>('POST', '/api/auth/logout', { token: refreshToken }),
	campaigns: (token: string) =>
		call<{ campaigns: CampaignSummary[] }>('GET', '/api/campaigns', { token }).then((r) => r.campaigns),
	campaign: (token: string, id: string) =>
		call<CampaignDetail>('GET', `/api/campaigns/${encodeURIComponent(id)}`, { token }),
	createCampaign: (token: string, body: { name: string; system?: string }) =>
		call<CampaignDetail>('POST', '/api/campaigns', { token, body }),
	createInvite: (token: string, id: string, role: Role, uses: number) =>
		call<Invite>('POST', `/api/campaigns/${encodeURIComponent(id)}/invites`, { token, body: { role, uses } }),
	join: (token: string, code: string) =>
		call<CampaignSummary>('POST', '/api/campaigns/join', { token, body: { code } })
};

/** A message for a person from any error. */
export function describeError(error: unknown): string {
	if (error instanceof ApiError) {
		switch (error.code) {
			case 'invalid_credentials':
				return 'Wrong username or password.';
			case 'user_exists':
				return 'That username is taken. Pick another or sign in.';
			case 'not_found':
				return 'Not found: the invite code may be wrong, used up or expired.';
			case 'invalid_message': {
				const problems = (error.data as { errors?: { loc: string[]; msg: string }[] } | null)?.errors;
				if (problems?.length) {
					return problems.map((p) => `${p.loc.at(-1) ?? 'value'}: ${p.msg}`).join('; ');
				}
				return error.message;
			}
			default:
				return error.message;
		}
	}
	return error instanceof Error ? error.message : String(error);
}
