// EventSource's behaviour over fetch, which can send the Authorization header (EventSource
// cannot): the coordinator's server-sent events, reconnecting by itself after a dropped
// connection (sending the last event's id as Last-Event-ID, so only what was missed comes
// back), and telling its owner when it is live, reconnecting or refused.
export type StreamState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StreamHandlers {
  message: (data: string) => void;
  state: (state: StreamState) => void;
}

export class TokenEventSource {
  private lastId = '';
  private retryMs = 2000;
  private readonly abort = new AbortController();
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  // `headers()` gives the request's headers (the bearer token among them) at each connection.
  constructor(
    private readonly url: string,
    private readonly headers: () => Record<string, string>,
    private readonly on: StreamHandlers,
    // Reconnect delay bounds: the server's retry: value, doubled per failure up to maxRetryMs.
    private readonly maxRetryMs = 5000,
  ) {
    this.on.state('connecting');
    void this.connect(0);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.abort.abort();
  }

  private async connect(failures: number): Promise<void> {
    const headers: Record<string, string> = { ...this.headers(), Accept: 'text/event-stream' };
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    try {
      const response = await fetch(this.url, {
        cache: 'no-store', headers, signal: this.abort.signal,
      });
      if (!response.ok || !response.body) {
        // An answer that is not a stream (no such sweep, too many streams): no retry.
        this.closed = true;
        this.on.state('closed');
        return;
      }
      failures = 0;
      this.on.state('open');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // A refused or dropped connection: retried below.
    }
    if (this.closed) return;
    this.on.state('reconnecting');
    const delay = Math.min(this.maxRetryMs, this.retryMs * 2 ** Math.min(failures, 4));
    this.timer = setTimeout(() => void this.connect(failures + 1), delay);
  }

  // One event block: "id:", "data:" and "retry:" lines; comments (":") are keep-alives.
  private dispatch(block: string): void {
    const data: string[] = [];
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (colon === 0) continue;
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
      else if (field === 'id') this.lastId = value;
      else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    if (data.length) this.on.message(data.join('\n'));
  }
}
