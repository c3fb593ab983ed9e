import { TokenEventSource, type StreamState } from './event_source';

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({ start(c) { chunks.forEach((s) => c.enqueue(encoder.encode(s))); c.close(); } });
}

describe('TokenEventSource', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('parses events, reconnects with Last-Event-ID and reports its state', async () => {
    const calls: Record<string, string>[] = [];
    vi.stubGlobal('fetch', vi.fn(async (_url: string, init: RequestInit) => {
      calls.push(init.headers as Record<string, string>);
      if (calls.length === 2) throw new TypeError('connection refused');
      return new Response(streamOf(['retry: 10\n\n: keep-alive\n\nid: 7\ndata: {"a":', '1}\n\n']),
        { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
    }));
    const messages: string[] = [];
    const states: StreamState[] = [];
    const source = new TokenEventSource('/events', () => ({ Authorization: 'Bearer t' }),
      { message: (d) => messages.push(d), state: (s) => states.push(s) }, 50);
    await vi.waitFor(() => expect(calls.length).toBeGreaterThanOrEqual(3), { timeout: 2000 });
    source.close();
    expect(messages.slice(0, 1)).toEqual(['{"a":1}']);
    expect(calls[0].Authorization).toBe('Bearer t');
    expect(calls[1]['Last-Event-ID']).toBe('7');
    expect(states.slice(0, 4)).toEqual(['connecting', 'open', 'reconnecting', 'reconnecting']);
    expect(states).toContain('open');
  });

  it('stops on an answer that is not a stream', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"error":"no"}', { status: 404 })));
    const states: StreamState[] = [];
    new TokenEventSource('/events', () => ({}), { message: () => {}, state: (s) => states.push(s) });
    await vi.waitFor(() => expect(states).toContain('closed'));
    expect(states).not.toContain('reconnecting');
  });
});
