// The one error the banner shows, with what "Try again" should do. A screen that loads, or a
// run card that refreshes, reports here instead of failing silently or leaving a blank page.

import { ApiError, toApiError } from '../transport';

export interface Failure {
  error: ApiError;
  retry: () => void;
}

export const failure = $state<{ current: Failure | null }>({ current: null });

export function report(raw: unknown, retry: () => void, fallbackCode = 'ui_error'): void {
  failure.current = { error: toApiError(raw, fallbackCode), retry };
}

export function clear(): void {
  failure.current = null;
}
