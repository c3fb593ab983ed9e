// What every view shares: the connection indicator in the header, the error line, and the
// live session of the sweep being looked at (its event stream and model), kept across the
// sweep's tabs so switching views does not reload a large sweep.
import { NotFound, Unauthenticated, Unreachable, allJobs, api, authHeaders, token } from './api';
import { h } from './dom';
import { TokenEventSource } from './event_source';
import type { SweepSnapshot } from './gen/ablate/v1/sweep_service';
import { SweepModel } from './sweep_model';

// 'unauthenticated': the coordinator answers, but not to this page's token (or to none).
export type Connection = 'live' | 'connecting' | 'reconnecting' | 'unauthenticated';

let connection: Connection = 'connecting';

export function setConnection(state: Connection): void {
  connection = state;
  const el = document.getElementById('connection');
  if (!el) return;
  el.dataset.state = state;
  el.textContent = state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' :
    state === 'reconnecting' ? 'reconnecting…' : token() ? 'token refused' : 'no token';
  document.body.classList.toggle('offline', state === 'reconnecting');
  for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-action]')) {
    syncActionButton(b);
  }
}

// An action needs the coordinator: its button is disabled while the page reconnects, as well as
// while the action runs (data-busy, views/actions.ts).
export function syncActionButton(button: HTMLButtonElement): void {
  button.disabled = connection === 'reconnecting' || button.dataset.busy === 'true';
}

export function connectionState(): Connection {
  return connection;
}

let shownError = '';

// Shows `message` on the error line until the reader dismisses it, the page navigates, an
// action starts, or whoever showed it takes it back (clearError).
export function showError(message: string): void {
  const el = document.getElementById('error');
  if (!el) return;
  shownError = message;
  el.replaceChildren(...(message ? [h('span', { className: 'error-message' }, message),
    h('button', { type: 'button', className: 'ghost dismiss', 'aria-label': 'dismiss',
      onclick: () => showError('') }, '×')] : []));
  el.hidden = !message;
}

// Takes back `message` if the error line still shows it, leaving any other error in place.
export function clearError(message: string): void {
  if (message && message === shownError) showError('');
}

// Runs `refresh` now and every `ms` until the returned stop is called; an unreachable
// coordinator shows as reconnecting, a refused token as such, and the next success as live
// again, taking back the error it showed (not an action's, which stays until dismissed).
export function poll(refresh: () => Promise<void>, ms = 2000): () => void {
  let stopped = false;
  let shown = '';
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = async () => {
    try {
      await refresh();
      if (!stopped) {
        setConnection('live');
        clearError(shown);
        shown = '';
      }
    } catch (e) {
      if (stopped) return;
      if (e instanceof Unreachable) {
        setConnection('reconnecting');
      } else {
        if (e instanceof Unauthenticated) setConnection('unauthenticated');
        shown = (e as Error).message;
        showError(shown);
      }
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// Asks the coordinator every two seconds (as the pages poll) whom this page's token names, for
// nothing but whether it answers: a page with nothing left to fetch (its sweep ended) still
// shows a lost connection.
export function watchConnection(): () => void {
  return poll(async () => {
    await api.whoami();
  });
}

type Listener = (grown: Set<string>) => void;

// One sweep followed live: its event stream feeds the model; listeners hear of every change.
// Where the stream is refused (or the page asks with ?poll=1) the JSON API is polled instead.
export class SweepSession {
  readonly model = new SweepModel();
  // Set when the coordinator has no such sweep: what to tell the reader instead of its views.
  missing = '';
  private source: TokenEventSource | null = null;
  private stopPoll: (() => void) | null = null;
  // Set once the sweep ended and its stream with it (watchConnection).
  private stopWatch: (() => void) | null = null;
  private readonly listeners = new Set<Listener>();

  constructor(readonly sweepId: string) {
    if (new URLSearchParams(location.search).has('poll')) this.startPolling();
    else this.startStream();
  }

  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.model.sweep || this.missing) listener(new Set());
    return () => this.listeners.delete(listener);
  }

  // Follows the sweep again where its stream ended with its jobs, as a retry runs some again
  // (a polled sweep is followed still).
  follow(): void {
    if (this.source || this.stopPoll) return;
    this.stopWatch?.();
    this.stopWatch = null;
    this.startStream();
  }

  close(): void {
    this.source?.close();
    this.stopPoll?.();
    this.stopWatch?.();
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
        if (state === 'open') {
          setConnection('live');
        } else if (state === 'reconnecting') {
          // A stream ends by itself once every job has ended: that is no lost connection, but
          // one may come later, and the header must tell it still.
          if (this.model.ended()) {
            this.source?.close();
            this.source = null;
            this.stopWatch = watchConnection();
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
      let sweep;
      try {
        sweep = await api.sweep(this.sweepId);
      } catch (e) {
        if (!(e instanceof NotFound)) throw e;
        this.missing = `No sweep ${this.sweepId} on this coordinator.`;
        this.stopPoll?.();
        setConnection('live');
        this.notify(new Set());
        return;
      }
      this.model.reset(sweep, await allJobs(this.sweepId));
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
