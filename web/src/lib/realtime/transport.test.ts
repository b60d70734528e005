import { describe, expect, it } from 'vitest';
import { describeStatus, type ConnectionStatus } from './client';
import { parseFrame } from './transport';

describe('frames and status lines', () => {
	it('reads one message, a batch, and ignores what is not JSON', () => {
		expect(parseFrame('{"type":"heartbeat","id":"h"}')).toHaveLength(1);
		expect(parseFrame('[{"type":"ack"},{"type":"ack"},3]')).toHaveLength(2);
		expect(parseFrame('not json')).toEqual([]);
	});

	it('says how many changes wait while reconnecting', () => {
		const status: ConnectionStatus = {
			state: 'reconnecting',
			transport: 'websocket',
			pending: 3,
			attempt: 2,
			retryAt: null,
			error: null,
			sessionId: null,
			user: null,
			campaignId: 'c',
			role: 'player'
		};
		expect(describeStatus(status)).toBe('Reconnecting... 3 changes waiting');
		expect(describeStatus({ ...status, state: 'authenticated', transport: 'sse', pending: 0 })).toBe('Connected (SSE)');
		expect(describeStatus({ ...status, state: 'offline', pending: 1, error: { code: 'x', message: 'refused' } })).toBe(
			'Offline (refused). 1 change waiting'
		);
	});
});
