// One way to call the backend from anywhere the page runs: inside the desktop app the calls go
// over Tauri's IPC, in a browser (`whet serve`) they go to POST /api/<command>. Screens do not
// import this module; they use the clients in ./clients, which are typed by the generated API.

import type { Transport } from '../generated/api';

export class ApiError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
  }
}

interface TauriInternals {
  invoke(cmd: string, args?: Record<string, unknown>): Promise<unknown>;
}

declare global {
  interface Window {
    __TAURI_INTERNALS__?: TauriInternals;
  }
}

export type Args = Record<string, unknown>;

const TOKEN_KEY = 'whetstone.token';

// `whet serve` prints a link ending in `#token=...`: the fragment never reaches the server's
// logs or a Referer header. The token is kept in memory, and in this tab's sessionStorage so a
// reload keeps working, and taken out of the address bar so it is not bookmarked or shared.
let token: string | null = takeToken();

function takeToken(): string | null {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (match) {
    const fresh = decodeURIComponent(match[1]);
    try {
      sessionStorage.setItem(TOKEN_KEY, fresh);
    } catch {
      // Storage can be switched off; the token still works until the page is reloaded.
    }
    history.replaceState(null, '', location.pathname + location.search);
    return fresh;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** Turns whatever a failed call produced into an ApiError with a code and a message. */
export function toApiError(raw: unknown, fallbackCode: string): ApiError {
  if (raw instanceof ApiError) return raw;
  if (raw && typeof raw === 'object') {
    const body = raw as { code?: unknown; message?: unknown };
    if (typeof body.code === 'string' && typeof body.message === 'string') {
      return new ApiError(body.code, body.message);
    }
    if (raw instanceof Error) return new ApiError(fallbackCode, raw.message);
    return new ApiError(fallbackCode, JSON.stringify(raw));
  }
  return new ApiError(fallbackCode, String(raw));
}

export function insideDesktopApp(): boolean {
  return typeof window.__TAURI_INTERNALS__?.invoke === 'function';
}

export async function call<T>(cmd: string, args: object = {}): Promise<T> {
  const tauri = window.__TAURI_INTERNALS__;
  if (tauri && typeof tauri.invoke === 'function') {
    try {
      // The desktop app has one IPC command, `call`, with the same contract as POST /api/<cmd>.
      return (await tauri.invoke('call', { command: cmd, args })) as T;
    } catch (raw) {
      // Tauri rejects with the command's serialized error, or a plain string for IPC failures.
      throw toApiError(raw, 'app_error');
    }
  }
  return callOverHttp<T>(cmd, args);
}

async function callOverHttp<T>(cmd: string, args: object): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`/api/${encodeURIComponent(cmd)}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(args),
    });
  } catch (raw) {
    const why = raw instanceof Error ? raw.message : String(raw);
    throw new ApiError(
      'unreachable',
      `Could not reach the Whetstone server (${why}). Check that \`whet serve\` is still running.`,
    );
  }
  if (response.status === 401) {
    // A stale tab from an earlier `whet serve` holds the old token; forget it.
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Nothing stored, nothing to forget.
    }
    token = null;
    throw new ApiError(
      'unauthorized',
      'The Whetstone server did not accept this page: open the link that `whet serve` printed ' +
        '(it ends with #token=…) to use the app in this browser.',
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text.length === 0 ? null : JSON.parse(text);
  } catch {
    throw new ApiError(
      'bad_response',
      `The server answered "${cmd}" with HTTP ${response.status} and a body that is not JSON: ${text.slice(0, 200)}`,
    );
  }
  if (!response.ok) {
    throw toApiError(body, `http_${response.status}`);
  }
  return body as T;
}

/** The transport the generated command functions run over. */
export const transport: Transport = { call };

/** A pushed stream the page listens to; `stop` leaves it, `done` settles when it has ended. */
export interface Following {
  stop(): void;
  done: Promise<void>;
}

/**
 * Follows a run's events as they are logged: over a Tauri Channel in the window, over the
 * server's event stream (`GET /api/events/run/{id}`) in a browser. `onBatch` gets each batch of
 * new events with the run's state; `done` rejects with an ApiError if the stream fails.
 */
export function followRun<T>(id: number, since: number, onBatch: (batch: T) => void): Following {
  let stopped = false;
  const controller = new AbortController();
  const deliver = (batch: T): void => {
    if (!stopped) onBatch(batch);
  };
  const stop = (): void => {
    stopped = true;
    controller.abort();
  };
  const done = insideDesktopApp()
    ? followOverChannel(id, since, deliver)
    : followOverHttp(id, since, deliver, controller.signal).catch((raw: unknown) => {
        if (stopped) return;
        throw raw;
      });
  return { stop, done };
}

async function followOverChannel<T>(id: number, since: number, deliver: (batch: T) => void): Promise<void> {
  const { Channel, invoke } = await import('@tauri-apps/api/core');
  const onEvents = new Channel<T>(deliver);
  try {
    await invoke('follow_run', { id, since, onEvents });
  } catch (raw) {
    throw toApiError(raw, 'app_error');
  }
}

/**
 * Desktop window only: `onRequest` hears of each request to close the window while a run trains
 * (the window then stays until `confirmClose`). Resolves once the window listens.
 */
export async function watchClose<T>(onRequest: (request: T) => void): Promise<void> {
  const { Channel, invoke } = await import('@tauri-apps/api/core');
  try {
    await invoke('watch_close', { onRequest: new Channel<T>(onRequest) });
  } catch (raw) {
    throw toApiError(raw, 'app_error');
  }
}

/** Desktop window only: closes the window after a close request was held. */
export async function confirmClose(): Promise<void> {
  const { invoke } = await import('@tauri-apps/api/core');
  try {
    await invoke('confirm_close');
  } catch (raw) {
    throw toApiError(raw, 'app_error');
  }
}

async function followOverHttp<T>(id: number, since: number, deliver: (batch: T) => void, signal: AbortSignal): Promise<void> {
  let response: Response;
  try {
    response = await fetch(`/api/events/run/${id}?since=${since}`, {
      headers: { accept: 'text/event-stream', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
      signal,
    });
  } catch (raw) {
    const why = raw instanceof Error ? raw.message : String(raw);
    throw new ApiError('unreachable', `Could not reach the Whetstone server (${why}).`);
  }
  if (!response.ok || response.body === null) {
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: shown as it came.
    }
    throw toApiError(body, `http_${response.status}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    // Server-sent events are separated by a blank line; a partial one waits for the rest.
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let name = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (name === 'events') deliver(JSON.parse(data.join('\n')) as T);
      else if (name === 'end') return;
      else if (name === 'error') throw toApiError(JSON.parse(data.join('\n')), 'stream_error');
    }
  }
}
