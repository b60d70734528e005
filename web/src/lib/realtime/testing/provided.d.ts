// What scripts/bridge-global-setup.ts provides to the bridge tests (`inject(...)`).
import 'vitest';

declare module 'vitest' {
	export interface ProvidedContext {
		bridgeUrl: string;
		accessTokenTtl: number;
		serverSchema: Record<string, unknown>;
	}
}
