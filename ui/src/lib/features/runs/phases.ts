// The stages before a run's first step, as the worker reports them (phase_started, phase_done),
// in the words the card shows.

import type { LoggedEvent, Phase } from '../../clients/runs';

export const PHASES: { phase: Phase; label: string }[] = [
  { phase: 'loading_model', label: 'Loading the model' },
  { phase: 'reading_data', label: 'Reading and tokenizing the data' },
  { phase: 'first_step', label: 'First training step' },
];

/** When each stage began (seconds since the epoch, the worker's clock) and how long it took once done. */
export type PhaseTimes = Partial<Record<Phase, { started: number; seconds: number | null }>>;

/**
 * The times after `event`: a phase event records its stage; the worker taking the run (a new
 * session, after a resume) starts the list again. Other events leave it as it was.
 */
export function withEvent(times: PhaseTimes, event: LoggedEvent): PhaseTimes {
  if (event.type === 'status') return {};
  if (event.type === 'phase_started') return { ...times, [event.phase]: { started: event.time, seconds: null } };
  if (event.type === 'phase_done') {
    const started = times[event.phase]?.started ?? event.time - event.seconds;
    return { ...times, [event.phase]: { started, seconds: event.seconds } };
  }
  return times;
}

export function seconds(s: number): string {
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 90) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
