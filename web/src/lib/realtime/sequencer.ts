/**
 * Exactly-once, in-order delivery of campaign events across reconnects (pure, no I/O).
 *
 * The bridge numbers every event of a campaign (`seq`, no gaps) within an `epoch`. While a join
 * or re-attach is in flight, events may arrive before the `campaign_snapshot` that anchors them
 * (over a WebSocket the bridge replays missed events, or announces the joiner, before it
 * answers), so they are held until the snapshot says where the table stands; over SSE the
 * replay follows the snapshot, as ordinary events. After that an event is applied only if it
 * is the next one: an older `seq` is a duplicate and dropped, a jump ahead is a gap (the caller
 * re-attaches to fetch what is missing).
 */
import type { CampaignEvent, Server } from './messages';

export interface SequencerStats {
	/** Events dropped because their seq had been applied already. */
	duplicates: number;
	/** Jumps ahead in seq seen outside a join. */
	gaps: number;
	/** Snapshots that replaced the table (not recovered, or a new epoch). */
	resets: number;
	/** Events replayed after a re-attach. */
	replayed: number;
}

export type Offer = { kind: 'apply' } | { kind: 'duplicate' } | { kind: 'gap'; expected: number } | { kind: 'held' };

export interface SnapshotOutcome {
	/** The snapshot replaces the whole table (else the missed events were replayed). */
	reset: boolean;
	/** Events held during the join that follow the snapshot, in seq order. */
	apply: CampaignEvent[];
	/** The held events left a hole before the snapshot's seq. */
	gap: boolean;
}

export class EventSequencer {
	epoch: string | null = null;
	lastSeq: number | null = null;
	readonly stats: SequencerStats = { duplicates: 0, gaps: 0, resets: 0, replayed: 0 };
	private joining = false;
	private held: CampaignEvent[] = [];
	/** After a recovered snapshot: events up to this seq are the replay (counted in stats). */
	private replayUntil = 0;

	/** Forget the table (another campaign, or a fresh start). */
	reset(): void {
		this.epoch = null;
		this.lastSeq = null;
		this.joining = false;
		this.held = [];
	}

	/** A join or re-attach was sent: hold events until its snapshot. */
	beginJoin(): void {
		this.joining = true;
		this.held = [];
	}

	get isJoining(): boolean {
		return this.joining;
	}

	/** What to do with one event as it arrives. */
	offer(event: CampaignEvent): Offer {
		if (this.joining) {
			this.held.push(event);
			return { kind: 'held' };
		}
		if (this.lastSeq === null) {
			this.lastSeq = event.seq;
			return { kind: 'apply' };
		}
		if (event.seq <= this.lastSeq) {
			this.stats.duplicates += 1;
			return { kind: 'duplicate' };
		}
		if (event.seq > this.lastSeq + 1) {
			this.stats.gaps += 1;
			return { kind: 'gap', expected: this.lastSeq + 1 };
		}
		this.lastSeq = event.seq;
		if (event.seq <= this.replayUntil) this.stats.replayed += 1;
		return { kind: 'apply' };
	}

	/** The join's answer: anchor the sequence and release the held events that follow it. */
	snapshot(data: Server.CampaignSnapshotData): SnapshotOutcome {
		const reset = !data.recovered || this.epoch !== data.epoch || this.lastSeq === null;
		if (reset) {
			this.stats.resets += 1;
			this.lastSeq = data.seq;
		}
		this.epoch = data.epoch;
		this.joining = false;
		this.replayUntil = reset ? 0 : data.seq;
		const held = [...this.held].sort((a, b) => a.seq - b.seq);
		this.held = [];
		const apply: CampaignEvent[] = [];
		let gap = false;
		for (const event of held) {
			const last = this.lastSeq ?? event.seq - 1;
			if (event.seq <= last) {
				this.stats.duplicates += 1;
			} else if (event.seq === last + 1) {
				this.lastSeq = event.seq;
				apply.push(event);
				if (!reset) this.stats.replayed += 1;
			} else {
				gap = true;
				this.stats.gaps += 1;
				break;
			}
		}
		// A recovered snapshot may come before the replayed events (SSE sends it first): those
		// follow as ordinary events from lastSeq on, so falling short of data.seq is no gap.
		return { reset, apply, gap };
	}
}
