// What each run started from the wizard was for, in the user's words. The backend keeps a run's
// model, data and settings; the name and goal are the user's own notes, kept in this browser or
// window's storage and shown on the run's card.

export interface RunGoal {
  name: string;
  task: string;
}

const KEY = 'whetstone.run-goals.v1';

function all(): Record<string, RunGoal> {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? '{}') as Record<string, RunGoal>;
  } catch {
    return {};
  }
}

export function goalOf(runId: number): RunGoal | null {
  return all()[String(runId)] ?? null;
}

export function rememberGoal(runId: number, goal: RunGoal): void {
  try {
    localStorage.setItem(KEY, JSON.stringify({ ...all(), [String(runId)]: goal }));
  } catch {
    // Without storage the card shows the run's number only.
  }
}
