// EventSource's interface over fetch, which can send the Authorization header (EventSource
// cannot), for the dashboard's live sweep stream (app.js). readyState is CONNECTING while
// (re)connecting, OPEN while events arrive, CLOSED after an answer that is not a 200 event
// stream; a dropped connection reconnects after the server's retry interval, sending the last
// event's id as Last-Event-ID.
export class TokenEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;

  // `headers()` gives the request's headers (the bearer token among them) at each connection.
  constructor(url, headers) {
    this.url = url;
    this.headers = headers;
    this.readyState = TokenEventSource.CONNECTING;
    this.lastId = '';
    this.retryMs = 2000;
    this.abort = new AbortController();
    this.onmessage = null;
    this.onerror = null;
    this.connect();
  }

  close() {
    this.readyState = TokenEventSource.CLOSED;
    this.abort.abort();
  }

  async connect() {
    const headers = { ...this.headers(), Accept: 'text/event-stream' };
    if (this.lastId) headers['Last-Event-ID'] = this.lastId;
    try {
      const response = await fetch(this.url, { cache: 'no-store', headers,
        signal: this.abort.signal });
      if (!response.ok || !response.body) {
        this.readyState = TokenEventSource.CLOSED;
        this.onerror?.();
        return;
      }
      this.readyState = TokenEventSource.OPEN;
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
      if (this.readyState === TokenEventSource.CLOSED) return;
    }
    if (this.readyState === TokenEventSource.CLOSED) return;
    this.readyState = TokenEventSource.CONNECTING;
    this.onerror?.();
    setTimeout(() => { if (this.readyState !== TokenEventSource.CLOSED) this.connect(); },
      this.retryMs);
  }

  // One event block: "id:", "data:" and "retry:" lines; comments (":") are keep-alives.
  dispatch(block) {
    const data = [];
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (colon === 0) continue;
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
      else if (field === 'id') this.lastId = value;
      else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    if (data.length) this.onmessage?.({ data: data.join('\n') });
  }
}
