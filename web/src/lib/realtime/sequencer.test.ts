import { describe, expect, it } from 'vitest';
import type { CampaignEvent, Server } from './messages';
import { EventSequencer } from './sequencer';

function event(seq: number): CampaignEvent {
	return {
		id: `e${seq}`,
		timestamp: 0,
		version: '1.0.0',
		type: 'participant_left',
		scope: 'campaign',
		campaign_id: 'camp',
		seq,
		data: { participant_id: 'u', kind: 'person', user_id: 'u', username: 'u' }
	};
}

function snapshot(seq: number, recovered: boolean, epoch = 'ep1'): Server.CampaignSnapshotData {
	return { campaign_id: 'camp', role: 'player', epoch, seq, recovered, participants: [] };
}

describe('EventSequencer', () => {
	it('holds events during a join and releases those after the snapshot, in seq order', () => {
		const sequencer = new EventSequencer();
		sequencer.beginJoin();
		expect(sequencer.offer(event(12)).kind).toBe('held');
		expect(sequencer.offer(event(11)).kind).toBe('held');
		expect(sequencer.offer(event(10)).kind).toBe('held');
		const outcome = sequencer.snapshot(snapshot(10, false));
		expect(outcome.reset).toBe(true);
		expect(outcome.apply.map((e) => e.seq)).toEqual([11, 12]);
		expect(outcome.gap).toBe(false);
		expect(sequencer.lastSeq).toBe(12);
		expect(sequencer.stats.duplicates).toBe(1);
	});

	it('drops an event it has already applied and flags a jump ahead as a gap', () => {
		const sequencer = new EventSequencer();
		sequencer.beginJoin();
		sequencer.snapshot(snapshot(5, false));
		expect(sequencer.offer(event(6)).kind).toBe('apply');
		expect(sequencer.offer(event(6)).kind).toBe('duplicate');
		expect(sequencer.offer(event(4)).kind).toBe('duplicate');
		expect(sequencer.offer(event(8))).toEqual({ kind: 'gap', expected: 7 });
		expect(sequencer.lastSeq).toBe(6);
		expect(sequencer.stats).toMatchObject({ duplicates: 2, gaps: 1 });
	});

	it('resumes after a re-attach with the replayed events and no reset', () => {
		const sequencer = new EventSequencer();
		sequencer.beginJoin();
		sequencer.snapshot(snapshot(3, false));
		sequencer.offer(event(4));
		sequencer.beginJoin();
		for (const seq of [5, 6, 7]) sequencer.offer(event(seq));
		const outcome = sequencer.snapshot(snapshot(7, true));
		expect(outcome.reset).toBe(false);
		expect(outcome.apply.map((e) => e.seq)).toEqual([5, 6, 7]);
		expect(sequencer.stats).toMatchObject({ resets: 1, replayed: 3, gaps: 0 });
	});

	it('treats held events that skip a seq as a gap', () => {
		const sequencer = new EventSequencer();
		sequencer.beginJoin();
		sequencer.snapshot(snapshot(3, false));
		sequencer.beginJoin();
		sequencer.offer(event(4));
		sequencer.offer(event(6));
		const outcome = sequencer.snapshot(snapshot(6, true));
		expect(outcome.gap).toBe(true);
		expect(outcome.apply.map((e) => e.seq)).toEqual([4]);
	});

	it('takes the replay after a recovered snapshot, as SSE sends it', () => {
		const sequencer = new EventSequencer();
		sequencer.beginJoin();
		sequencer.snapshot(snapshot(3, false));
		sequencer.beginJoin();
		const outcome = sequencer.snapshot(snapshot(6, true));
		expect(outcome).toEqual({ reset: false, apply: [], gap: false });
		expect([4, 5, 6].map((seq) => sequencer.offer(event(seq)).kind)).toEqual(['apply', 'apply', 'apply']);
		expect(sequencer.lastSeq).toBe(6);
	});

	it('starts over when the epoch changed', () => {
		const sequencer = new EventSequencer();
		sequencer.beginJoin();
		sequencer.snapshot(snapshot(40, false, 'ep1'));
		sequencer.beginJoin();
		const outcome = sequencer.snapshot(snapshot(2, false, 'ep2'));
		expect(outcome.reset).toBe(true);
		expect(sequencer.lastSeq).toBe(2);
		expect(sequencer.epoch).toBe('ep2');
	});
});
