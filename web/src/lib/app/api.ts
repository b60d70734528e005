/**
 * The bridge's HTTP API as the pages call it, over the realtime library's `BridgeApi` (one HTTP
 * client for the whole app), plus `describeError`: the bridge's error codes in words, so a form
 * can say why next to where it failed.
 */
import {
	type AgentView,
	BridgeApi,
	BridgeApiError,
	type CampaignDetail,
	type CampaignSummary,
	type ConsentRequestView,
	type InviteView,
	type TokenPair,
	type UserInfo
} from '$lib/realtime/http';
import type { Role } from '$lib/realtime/messages';

export type { AgentView, ConsentRequestView };
export type { CampaignDetail, CampaignSummary, InviteView as Invite, Role, TokenPair, UserInfo };
export { BridgeApiError as ApiError };

const bridge = new BridgeApi();

export const api = {
	register: (name: string, password: string) => bridge.register({ name, password }),
	login: (name: string, password: string) => bridge.login(name, password),
	refresh: (refreshToken: string) => bridge.refresh(refreshToken),
	logout: (refreshToken: string) => bridge.logout(refreshToken),
	campaigns: (token: string) => bridge.listCampaigns(token),
	campaign: (token: string, id: string) => bridge.getCampaign(token, id),
	createCampaign: (token: string, body: { name: string; system?: string }) => bridge.createCampaign(token, body),
	createInvite: (token: string, id: string, role: Role, uses: number) => bridge.createInvite(token, id, { role, uses }),
	join: (token: string, code: string) => bridge.joinByCode(token, code),
	consentRequest: (token: string, requestId: string) => bridge.consentRequest(token, requestId),
	approveConsent: (token: string, requestId: string, campaignId: string, role: Role) =>
		bridge.decideConsent(token, { request: requestId, approve: true, campaign_id: campaignId, role }),
	denyConsent: (token: string, requestId: string) => bridge.decideConsent(token, { request: requestId, approve: false }),
	myAgents: (token: string) => bridge.myAgents(token),
	revokeMyAgent: (token: string, agentId: string) => bridge.revokeMyAgent(token, agentId),
	campaignAgents: (token: string, campaignId: string) => bridge.campaignAgents(token, campaignId),
	revokeCampaignAgent: (token: string, campaignId: string, agentId: string) =>
		bridge.revokeCampaignAgent(token, campaignId, agentId)
};

/** A message for a person from any error. */
export function describeError(error: unknown): string {
	if (error instanceof BridgeApiError) {
		switch (error.code) {
			case 'invalid_credentials':
				return 'Wrong username or password.';
			case 'network_error':
				return 'The bridge cannot be reached. Check your connection.';
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
