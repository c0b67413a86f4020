// The page's keys, decided in one place from a key press and where it happened. Text fields keep
// their keys (digits, letters and arrows are text there); Ctrl+Enter still saves from them.

import type { Choice } from '../../clients/rating';

export type KeyAction =
  | { kind: 'score'; value: number }
  | { kind: 'criterion'; by: 1 | -1 }
  | { kind: 'item'; by: 1 | -1 }
  | { kind: 'prefer'; choice: Choice }
  | { kind: 'submit' };

export interface KeyPress {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  target: EventTarget | null;
}

const PREFER: Record<string, Choice> = { a: 'a', b: 'b', t: 'tie' };

function isTextField(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target instanceof HTMLTextAreaElement || target.isContentEditable) return true;
  return target instanceof HTMLInputElement && !['radio', 'checkbox', 'button', 'submit'].includes(target.type);
}

function isButtonOrLink(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLButtonElement ||
    target instanceof HTMLAnchorElement ||
    (target instanceof HTMLElement && target.tagName === 'SUMMARY')
  );
}

export function keyAction(e: KeyPress): KeyAction | null {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) return { kind: 'submit' };
  if (isTextField(e.target) || e.ctrlKey || e.metaKey || e.altKey) return null;
  if (/^[1-5]$/.test(e.key)) return { kind: 'score', value: Number(e.key) };
  switch (e.key) {
    case 'ArrowDown':
      return { kind: 'criterion', by: 1 };
    case 'ArrowUp':
      return { kind: 'criterion', by: -1 };
    case 'ArrowRight':
      return { kind: 'item', by: 1 };
    case 'ArrowLeft':
      return { kind: 'item', by: -1 };
    case 'Enter':
      // A focused button (or a section's heading that opens it) does what it says.
      return isButtonOrLink(e.target) ? null : { kind: 'submit' };
  }
  const choice = PREFER[e.key.toLowerCase()];
  return choice ? { kind: 'prefer', choice } : null;
}
