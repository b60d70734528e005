/**
 * Which MCP tools each role may call by default (docs/protocol.md, "Roles and permissions").
 * The bridge decides; this only keeps the tool panel from offering what would be refused. A
 * bridge with its own `tool_policy` still answers `forbidden`, and the panel shows that.
 */
import type { Role } from '$lib/realtime/messages';

const PLAYER_TOOLS = ['get_campaign', 'get_character', 'list_items', 'list_sources', 'roll_dice', 'search'];
const SPECTATOR_TOOLS = ['get_campaign', 'list_items', 'list_sources', 'search'];

export function mayCall(role: Role | null, tool: string): boolean {
	if (role === 'gm') return true;
	if (role === 'player') return PLAYER_TOOLS.includes(tool);
	if (role === 'spectator') return SPECTATOR_TOOLS.includes(tool);
	return false;
}
