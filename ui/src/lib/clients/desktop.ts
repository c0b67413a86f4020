// The desktop window's own requests: asking before it closes on a training run.

import { confirmClose, insideDesktopApp, watchClose } from '../transport';
import type { Run } from '../../generated/api';

/** A request to close the window while runs train (src-tauri/src/close.rs). */
export interface CloseRequest {
  active: Run[];
}

export const desktop = {
  /** Only the window has a close button that can be held. */
  available: insideDesktopApp,
  watchClose: (onRequest: (request: CloseRequest) => void): Promise<void> => watchClose<CloseRequest>(onRequest),
  confirmClose,
};
