// One way to call the backend from anywhere the page runs: inside the desktop app the calls go
// over Tauri's IPC, in a browser (`whet serve`) they go to POST /api/<command>. Screens do not
// import this module; they use the clients in ./clients, which are typed by the generated API.

import type { Model, PullEvent, FileProgress, PullRequest, Transport } from '../generated/api';

export class ApiError extends Error {
  readonly code: string;
  /** The server's own words, where the message shown is the page's (a refused token, say). */
  readonly detail: string | undefined;

  constructor(code: string, message: string, detail?: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.detail = detail;
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
    const refused = (await response.json().catch(() => null)) as { message?: unknown } | null;
    throw new ApiError(
      'unauthorized',
      'The Whetstone server did not accept this page: open the link that `whet serve` printed ' +
        '(it ends with #token=…) to use the app in this browser.',
      typeof refused?.message === 'string' ? refused.message : undefined,
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
  const response = await openEventStream(`/api/events/run/${id}?since=${since}`, { signal });
  await readEventStream(response, 'events', deliver);
}

/**
 * Answers one prompt with a run's base model and its tuned one, each answer's new text pushed to
 * `onEvent` as it is written: over a Tauri Channel in the window, over the server's event stream
 * (`POST /api/events/playground`) in a browser. `stop` stops both answers; `done` settles when
 * they have ended and rejects with an ApiError if answering failed.
 */
export function streamPlayground<T>(request: object, onEvent: (event: T) => void): Following {
  let stopped = false;
  const controller = new AbortController();
  const deliver = (event: T): void => {
    if (!stopped) onEvent(event);
  };
  const inWindow = insideDesktopApp();
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    // In a browser the closed connection stops the server; the window has to be told.
    if (inWindow) void import('@tauri-apps/api/core').then(({ invoke }) => invoke('stop_playground'));
    else controller.abort();
  };
  const done = (inWindow ? playgroundOverChannel(request, deliver) : playgroundOverHttp(request, deliver, controller.signal)).catch(
    (raw: unknown) => {
      if (stopped && !inWindow) return;
      throw raw;
    },
  );
  return { stop, done };
}

async function playgroundOverChannel<T>(request: object, deliver: (event: T) => void): Promise<void> {
  const { Channel, invoke } = await import('@tauri-apps/api/core');
  const onEvent = new Channel<T>(deliver);
  try {
    await invoke('stream_playground', { request, onEvent });
  } catch (raw) {
    throw toApiError(raw, 'app_error');
  }
}

async function playgroundOverHttp<T>(request: object, deliver: (event: T) => void, signal: AbortSignal): Promise<void> {
  const response = await openEventStream('/api/events/playground', {
    method: 'POST',
    body: JSON.stringify(request),
    signal,
  });
  await readEventStream(response, 'playground', deliver);
}

/**
 * Runs an evaluation (`eval_run`'s arguments) and is told of each stage as it goes: over a Tauri
 * Channel in the window, over the server's event stream (`POST /api/events/eval_run`) in a browser.
 * Settles with the stored evaluation, or rejects with an ApiError.
 */
export async function evalRunWithProgress<P, E>(args: object, onProgress: (progress: P) => void): Promise<E> {
  if (insideDesktopApp()) {
    const { Channel, invoke } = await import('@tauri-apps/api/core');
    try {
      return await invoke<E>('eval_run_with_progress', { args, onProgress: new Channel<P>(onProgress) });
    } catch (raw) {
      throw toApiError(raw, 'app_error');
    }
  }
  const response = await openEventStream('/api/events/eval_run', { method: 'POST', body: JSON.stringify(args) });
  let result: E | undefined;
  await readEvents(response, (name, data) => {
    if (name === 'progress') onProgress(JSON.parse(data) as P);
    else if (name === 'evaluation') {
      result = JSON.parse(data) as E;
      return true;
    } else if (name === 'error') throw toApiError(JSON.parse(data), 'stream_error');
    return false;
  });
  if (result === undefined) throw new ApiError('stream_error', 'The evaluation stream ended before the evaluation was stored.');
  return result;
}

/**
 * Follows a review session's status (each rater's progress): sent at once and whenever a rating,
 * an invitation or a revocation changes it, until the session is closed or `stop` is called. Over a
 * Tauri Channel in the window, over `GET /api/events/review/{id}` in a browser.
 */
export function followReview<T>(id: number, onStatus: (status: T) => void): Following {
  let stopped = false;
  const controller = new AbortController();
  const deliver = (status: T): void => {
    if (!stopped) onStatus(status);
  };
  let leave = (): void => controller.abort();
  const stop = (): void => {
    stopped = true;
    leave();
  };
  const done = insideDesktopApp()
    ? (async () => {
        const { Channel, invoke } = await import('@tauri-apps/api/core');
        const channel = new Channel<T>(deliver);
        // A Channel cannot tell that the page has moved on; the window's follower is told to end.
        leave = () => void invoke('stop_following', { channel: channel.id }).catch(() => undefined);
        if (stopped) leave();
        try {
          await invoke('follow_review', { id, onStatus: channel });
        } catch (raw) {
          throw toApiError(raw, 'app_error');
        }
      })()
    : (async () => {
        const response = await openEventStream(`/api/events/review/${id}`, { signal: controller.signal });
        await readEventStream(response, 'status', deliver);
      })().catch((raw: unknown) => {
        if (stopped) return;
        throw raw;
      });
  return { stop, done };
}

/** Opens one of the server's event streams, or throws the ApiError it was refused with. */
async function openEventStream(path: string, init: { method?: string; body?: string; signal?: AbortSignal }): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(path, {
      method: init.method ?? 'GET',
      headers: {
        accept: 'text/event-stream',
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      },
      body: init.body,
      signal: init.signal,
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
  return response;
}

/**
 * Reads a server-sent event stream to its end: each `name` message's JSON goes to `deliver`, `end`
 * ends the stream, `error` rejects with its `{code, message}`.
 */
async function readEventStream<T>(response: Response, name: string, deliver: (data: T) => void): Promise<void> {
  await readEvents(response, (event, data) => {
    if (event === name) deliver(JSON.parse(data) as T);
    else if (event === 'end') return true;
    else if (event === 'error') throw toApiError(JSON.parse(data), 'stream_error');
    return false;
  });
}

/** Hands each server-sent event to `onEvent` until the stream ends or `onEvent` returns true. */
async function readEvents(response: Response, onEvent: (name: string, data: string) => boolean): Promise<void> {
  if (response.body === null) return;
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
      if (onEvent(name, data.join('\n'))) {
        await reader.cancel();
        return;
      }
    }
  }
}

/**
 * Downloads a hub model, telling `onProgress` how far it has come (over a Tauri Channel in the
 * window, the server's `POST /api/events/pull` stream in a browser). `done` settles with the added
 * model, or rejects with an ApiError (`cancelled` after `cancel_pull`; the partial file stays and
 * the same download started again resumes it).
 */
export function pullModel(request: PullRequest, onProgress: (p: FileProgress) => void): Promise<Model> {
  return insideDesktopApp() ? pullOverChannel(request, onProgress) : pullOverHttp(request, onProgress);
}

async function pullOverChannel(request: PullRequest, onProgress: (p: FileProgress) => void): Promise<Model> {
  const { Channel, invoke } = await import('@tauri-apps/api/core');
  let added: Model | null = null;
  const onEvents = new Channel<PullEvent>((event) => {
    if (event.type === 'progress') onProgress(event);
    else added = event.model;
  });
  try {
    await invoke('pull_model_follow', { request, onEvents });
  } catch (raw) {
    throw toApiError(raw, 'app_error');
  }
  if (added === null) throw new ApiError('stream_error', 'The download ended without adding the model.');
  return added;
}

async function pullOverHttp(request: PullRequest, onProgress: (p: FileProgress) => void): Promise<Model> {
  const response = await openEventStream('/api/events/pull', { method: 'POST', body: JSON.stringify(request) });
  let added: Model | null = null;
  await readEvents(response, (name, data) => {
    if (name === 'progress') onProgress(JSON.parse(data) as FileProgress);
    else if (name === 'done') added = JSON.parse(data) as Model;
    else if (name === 'error') throw toApiError(JSON.parse(data), 'stream_error');
    return added !== null;
  });
  if (added === null) throw new ApiError('stream_error', 'The download ended without adding the model.');
  return added;
}
