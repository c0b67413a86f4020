// The playground: one prompt answered by a run's base model and by the tuned one, side by side.

import { api } from '../api';
import { streamPlayground, type Following } from '../transport';
import type { PlaygroundEvent, PlaygroundRequest, PlaygroundResult } from '../../generated/api';

export type {
  AnswerEnd,
  PlaygroundAnswer,
  PlaygroundEvent,
  PlaygroundRequest,
  PlaygroundResult,
  PlaygroundSetup,
  PlaygroundSide,
} from '../../generated/api';

/** The longest answer the backend accepts, in tokens (`MAX_NEW_TOKENS` in playground.rs). */
export const MAX_ANSWER_TOKENS = 2048;
/** The highest temperature the backend accepts (`MAX_TEMPERATURE`). */
export const MAX_TEMPERATURE = 2;
/** The longest prompt, in characters (`MAX_PROMPT_CHARS`). */
export const MAX_PROMPT_CHARS = 20000;

export const playground = {
  /** Both answers as they are written; `stop` ends them at their next token. */
  stream: (req: PlaygroundRequest, onEvent: (event: PlaygroundEvent) => void): Following =>
    streamPlayground<PlaygroundEvent>(req, onEvent),
  /** Both answers once they are complete. */
  answer: (req: PlaygroundRequest): Promise<PlaygroundResult> => api.playground(req),
};
