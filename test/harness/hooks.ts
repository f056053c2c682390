/**
 * Mocha root hooks, loaded through .mocharc.json `require`: whatever servers a test file
 * forgot (or could not) stop are stopped once the run ends.
 */
import { stopAll } from './redis';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopAll();
  },
};
