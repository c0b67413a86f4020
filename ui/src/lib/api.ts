// The generated command functions over the one transport. Only the clients import this.

import { commands } from '../generated/api';
import { transport } from './transport';

export const api = commands(transport);
