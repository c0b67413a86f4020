// The typed API for the screens: one function per command, generated from the Rust command table
// (crates/whetstone-api/src/dispatch.rs), over the one transport.

import { call } from './transport.js';
import { commands } from './generated/api.js';

export const api = commands({ call: (command, args) => call(command, args as Record<string, unknown>) });

export type * from './generated/api.js';
