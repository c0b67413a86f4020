// Saves the rater's work shortly after each change, one save at a time and in order, so the
// server's current rating is always the last thing the rater did. Going to another item first
// waits for every pending save; a failed one stops the move, so work is never left behind unsaved.

export class Autosave {
  #dirty = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | null = null;
  readonly #save: () => Promise<void>;

  constructor(save: () => Promise<void>) {
    this.#save = save;
  }

  /** Something changed: save it once nothing else has changed for `delayMs`. */
  touch(delayMs: number): void {
    this.#dirty = true;
    clearTimeout(this.#timer);
    // A failure is shown by the save itself; here it only must not go unhandled.
    this.#timer = setTimeout(() => this.flush().catch(() => undefined), delayMs);
  }

  /** Saves whatever is pending now; rejects when a save fails (the change stays pending). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    for (;;) {
      if (this.#running) {
        await this.#running;
        continue;
      }
      if (!this.#dirty) return;
      this.#dirty = false;
      this.#running = this.#save()
        .catch((error: unknown) => {
          this.#dirty = true;
          throw error;
        })
        .finally(() => {
          this.#running = null;
        });
    }
  }

  /** Forgets pending changes (the page moved on without them, e.g. the session closed). */
  drop(): void {
    clearTimeout(this.#timer);
    this.#dirty = false;
  }
}
