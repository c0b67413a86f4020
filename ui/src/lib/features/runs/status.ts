// Run states in words a newcomer understands.

import type { RunStatus } from '../../clients/runs';

export const STATUS_WORDS: Record<RunStatus, string> = {
  queued: 'waiting to start',
  running: 'training',
  paused: 'paused',
  stopped: 'stopped',
  completed: 'finished',
  failed: 'failed',
  cancelled: 'cancelled',
  interrupted: 'interrupted',
  discarded: 'discarded',
};
