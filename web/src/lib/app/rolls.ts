/** Roll log and roller text helpers: dropped dice in a roll's text, and chat-style commands. */

export interface TextPart {
	text: string;
	dropped: boolean;
}

/** The roll's text split where the engine marks dropped dice (`~~11~~`), for <s> without markup. */
export function splitDropped(text: string): TextPart[] {
	const parts: TextPart[] = [];
	const pattern = /~~(.*?)~~/g;
	let last = 0;
	for (const match of text.matchAll(pattern)) {
		const at = match.index ?? 0;
		if (at > last) parts.push({ text: text.slice(last, at), dropped: false });
		parts.push({ text: match[1] ?? '', dropped: true });
		last = at + match[0].length;
	}
	if (last < text.length) parts.push({ text: text.slice(last), dropped: false });
	return parts;
}

/** `/r 1d20+5 stealth` or `/roll ...` as people type it in chat; plain expressions pass through. */
export function parseRollCommand(input: string): { expression: string; purpose: string } {
	const trimmed = input.trim();
	const command = /^\/(?:r|roll)\s+(\S+)(?:\s+(.*))?$/i.exec(trimmed);
	if (command) return { expression: command[1] ?? '', purpose: (command[2] ?? '').trim() };
	return { expression: trimmed, purpose: '' };
}
