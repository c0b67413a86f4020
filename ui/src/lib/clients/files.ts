// Files the user points at. The desktop window has the system's file dialogs and is told the paths
// of files dropped on it; a browser tab against `whet serve` has neither (a page is never told where
// a file is), so there the path is typed, and a dropped file is sent by its content and kept in
// Whetstone's imports folder. Screens ask this client and never look at which one they run in.

import { api } from '../api';
import { ApiError, insideDesktopApp } from '../transport';

export interface FileFilter {
  name: string;
  extensions: string[];
}

/** The server's limit on a file sent by its content (`uploads::MAX_UPLOAD_BYTES`); it refuses larger ones itself. */
export const MAX_UPLOAD_BYTES = 4 * 1024 * 1024;

export const DATA_FILTERS: FileFilter[] = [{ name: 'Examples', extensions: ['jsonl', 'json', 'csv', 'tsv', 'txt'] }];
export const SETTINGS_FILTERS: FileFilter[] = [{ name: 'Training settings', extensions: ['toml', 'yaml', 'yml', 'json'] }];
export const MODEL_FILTERS: FileFilter[] = [{ name: 'GGUF model', extensions: ['gguf'] }];

/** The folder a path is in, for either kind of separator. */
export function folderOf(path: string): string {
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  if (cut < 0) return path;
  const folder = path.slice(0, cut);
  // A file at the top of a disk: the folder is the root itself (`/`, `C:\`).
  return folder === '' || /^[A-Za-z]:$/.test(folder) ? path.slice(0, cut + 1) : folder;
}

/** What the user picked may be read and written from now on: its folder joins the allowed folders. */
async function allow(folder: string): Promise<void> {
  await api.allow_folder({ path: folder });
}

export interface WindowDrop {
  /** Files are being dragged over the window (true) or no longer are (false). */
  over(on: boolean): void;
  /** Files were dropped on the window; their folders are allowed already. */
  drop(paths: string[]): void;
}

export const files = {
  /** Whether this page can show the system's file dialogs and is told the paths of dropped files. */
  native: (): boolean => insideDesktopApp(),

  /** Asks for a file (or a folder) to open with the system's dialog; null when the user cancels. */
  async pickOpen(title: string, filters: FileFilter[], folder = false): Promise<string | null> {
    const { open } = await import('@tauri-apps/plugin-dialog');
    const picked = await open({ title, multiple: false, directory: folder, filters: folder ? undefined : filters });
    if (typeof picked !== 'string') return null;
    await allow(folder ? picked : folderOf(picked));
    return picked;
  },

  /** Asks where to save with the system's dialog; null when the user cancels. */
  async pickSave(title: string, filters: FileFilter[], defaultPath?: string): Promise<string | null> {
    const { save } = await import('@tauri-apps/plugin-dialog');
    const picked = await save({ title, filters, defaultPath });
    if (picked === null) return null;
    await allow(folderOf(picked));
    return picked;
  },

  /**
   * Follows files dragged onto the desktop window, which learns their paths. Returns the function
   * that stops following. A browser tab is told of drops by the page's own drop events instead.
   */
  followWindowDrops(handlers: WindowDrop): () => void {
    let stopped = false;
    let unlisten: (() => void) | null = null;
    void import('@tauri-apps/api/webview').then(async ({ getCurrentWebview }) => {
      const stop = await getCurrentWebview().onDragDropEvent((event) => {
        const p = event.payload;
        if (p.type === 'enter' || p.type === 'over') handlers.over(true);
        else if (p.type === 'leave') handlers.over(false);
        else {
          handlers.over(false);
          void Promise.all(p.paths.map((path) => allow(folderOf(path)))).then(() => handlers.drop(p.paths));
        }
      });
      if (stopped) stop();
      else unlisten = stop;
    });
    return () => {
      stopped = true;
      unlisten?.();
    };
  },

  /** Sends a file dropped on a page to the server, which keeps it under a fresh name; returns that path. */
  async upload(file: File): Promise<string> {
    // Said before the file is read into memory; the server holds to the same limit.
    if (file.size > MAX_UPLOAD_BYTES) {
      throw new ApiError(
        'too_large',
        `“${file.name}” is ${Math.ceil(file.size / 1048576)} MB; a page can send files of up to ${MAX_UPLOAD_BYTES / 1048576} MB. ` +
          'For a larger file, type its full path instead.',
      );
    }
    const text = await file.text();
    const kept = await api.data_upload({ name: file.name, text });
    return kept.path;
  },
};
