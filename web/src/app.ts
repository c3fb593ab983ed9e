// What every view shares: the connection indicator in the header, the error line, and the
// live session of the sweep being looked at (its event stream and model), kept across the
// sweep's tabs so switching views does not reload a large sweep.
import { Unreachable, allJobs, api, authHeaders } from './api';
import { TokenEventSource, type StreamState } from './event_source';
import type { SweepSnapshot } from './gen/ablate/v1/sweep_service';
import { SweepModel } from './sweep_model';

export type Connection = 'live' | 'connecting' | 'reconnecting';

let connection: Connection = 'connecting';

export function setConnection(state: Connection): void {
  connection = state;
  const el = document.getElementById('connection');
  if (!el) return;
  el.dataset.state = state;
  el.textContent = state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' :
    'reconnecting…';
  document.body.classList.toggle('offline', state === 'reconnecting');
}

export function connectionState(): Connection {
  return connection;
}

export function showError(message: string): void {
  const el = document.getElementById('error');
  if (!el) return;
  el.textContent = message;
  el.hidden = !message;
}

// Runs `refresh` now and every `ms` until the returned stop is called; an unreachable
// coordinator shows as reconnecting, and the next success as live again.
export function poll(refresh: () => Promise<void>, ms = 2000): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = async () => {
    try {
      await refresh();
      if (!stopped) {
        setConnection('live');
        showError('');
      }
    } catch (e) {
      if (stopped) return;
      if (e instanceof Unreachable) setConnection('reconnecting');
      else showError((e as Error).message);
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

type Listener = (grown: Set<string>) => void;

// One sweep followed live: its event stream feeds the model; listeners hear of every change.
// Where the stream is refused (or the page asks with ?poll=1) the JSON API is polled instead.
export class SweepSession {
  readonly model = new SweepModel();
  private source: TokenEventSource | null = null;
  private stopPoll: (() => void) | null = null;
  private readonly listeners = new Set<Listener>();
  private streamState: StreamState = 'connecting';

  constructor(readonly sweepId: string) {
    if (new URLSearchParams(location.search).has('poll')) this.startPolling();
    else this.startStream();
  }

  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.model.sweep) listener(new Set());
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.source?.close();
    this.stopPoll?.();
  }

  private notify(grown: Set<string>): void {
    for (const l of this.listeners) l(grown);
  }

  private startStream(): void {
    const url = `/api/v1/sweeps/${encodeURIComponent(this.sweepId)}/events`;
    this.source = new TokenEventSource(url, () => authHeaders(), {
      message: (data) => {
        const grown = this.model.apply(JSON.parse(data) as SweepSnapshot);
        this.notify(grown);
      },
      state: (state) => {
        const wasDown = this.streamState === 'reconnecting';
        this.streamState = state;
        if (state === 'open') {
          setConnection('live');
          if (wasDown) showError('');
        } else if (state === 'reconnecting') {
          // A stream ends by itself once every job has ended: that is no lost connection.
          if (this.model.ended()) {
            this.source?.close();
            setConnection('live');
          } else {
            setConnection('reconnecting');
          }
        } else if (state === 'closed') {
          this.source = null;
          this.startPolling();
        }
      },
    });
  }

  private startPolling(): void {
    this.stopPoll = poll(async () => {
      const [sweep, jobs] = await Promise.all([api.sweep(this.sweepId), allJobs(this.sweepId)]);
      this.model.reset(sweep, jobs);
      this.notify(new Set());
    }, 3000);
  }
}

let session: SweepSession | null = null;

// The session of `sweepId`, reusing the current one when it follows the same sweep.
export function sweepSession(sweepId: string): SweepSession {
  if (session?.sweepId !== sweepId) {
    session?.close();
    session = new SweepSession(sweepId);
  }
  return session;
}

export function closeSweepSession(): void {
  session?.close();
  session = null;
}
