import type { BenchContext, ScenarioResult } from '../lib/types.ts';

export async function clientScenario(_ctx: BenchContext): Promise<ScenarioResult> {
  throw new Error('not written yet');
}
