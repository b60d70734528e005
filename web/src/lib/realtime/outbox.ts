/**
 * Requests waiting for their reply, in the order they were made (pure bookkeeping, no timers).
 *
 * A request keeps its `id` for life: when the connection drops before the reply, the client
 * sends it again with the same id after re-attaching, and the bridge answers a change it already
 * applied from its record (`duplicate: true`) instead of applying it twice. Requests that only
 * make sense on the connection they were sent on (heartbeats, token swaps) are not resent; they
 * fail when that connection goes.
 */
import type { Reply } from './messages';

export interface OutboxEntry {
	id: string;
	message: Record<string, unknown> & { id: string; type: string };
	/** Sent again after a reconnect (else it fails with the connection). */
	resend: boolean;
	/** Changes something at the table: counted as "changes waiting" while offline. */
	change: boolean;
	timeoutMs: number;
	/** The connection (generation) it was last sent on; null = not sent yet. */
	sentOn: number | null;
	/** Not to be sent before this time (ms since epoch): the bridge said wait (`rate_limited`). */
	notBefore: number;
	sends: number;
	resolve: (reply: Reply) => void;
	reject: (error: Error) => void;
	timer: ReturnType<typeof setTimeout> | null;
}

export class Outbox {
	private readonly entries = new Map<string, OutboxEntry>();

	add(entry: OutboxEntry): void {
		this.entries.set(entry.id, entry);
	}

	get(id: string): OutboxEntry | undefined {
		return this.entries.get(id);
	}

	/** Remove and return the entry a reply answers. */
	take(id: string): OutboxEntry | undefined {
		const entry = this.entries.get(id);
		if (entry !== undefined) {
			this.entries.delete(id);
			if (entry.timer !== null) clearTimeout(entry.timer);
			entry.timer = null;
		}
		return entry;
	}

	/** Entries not yet sent on connection `generation`, oldest first. */
	unsentOn(generation: number): OutboxEntry[] {
		return [...this.entries.values()].filter((entry) => entry.sentOn !== generation);
	}

	/** Every entry, oldest first. */
	all(): OutboxEntry[] {
		return [...this.entries.values()];
	}

	/** Unanswered changes: what the status shows as waiting. */
	get changes(): number {
		let count = 0;
		for (const entry of this.entries.values()) if (entry.change) count += 1;
		return count;
	}

	get size(): number {
		return this.entries.size;
	}
}
