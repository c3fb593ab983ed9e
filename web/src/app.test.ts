// @vitest-environment jsdom
import { Unauthenticated } from './api';
import { SweepSession, poll, showError } from './app';

const tick = () => new Promise((r) => setTimeout(r, 0));
const errorText = () => document.querySelector('#error .error-message')?.textContent ?? '';

describe('the error line and the connection indicator', () => {
  beforeEach(() => {
    document.body.innerHTML = '<span id="connection"></span><p id="error" hidden></p>';
    localStorage.clear();
  });

  it('keeps an action\'s error through refreshes until dismissed', async () => {
    showError('retry j1: retry needs a token of role user; this token\'s role is viewer');
    const stop = poll(async () => {}, 1);
    await new Promise((r) => setTimeout(r, 20));
    stop();
    expect(errorText()).toMatch(/^retry j1: /);
    (document.querySelector('#error .dismiss') as HTMLButtonElement).click();
    expect((document.getElementById('error') as HTMLElement).hidden).toBe(true);
  });

  it('takes back the error a refresh showed once one succeeds', async () => {
    let fail = true;
    const stop = poll(async () => {
      if (fail) throw new Error('HTTP 500');
    }, 1);
    await tick();
    expect(errorText()).toBe('HTTP 500');
    fail = false;
    await vi.waitFor(() => expect((document.getElementById('error') as HTMLElement).hidden)
      .toBe(true), { timeout: 5000 });
    stop();
  });

  it('says when there is no token, rather than live or connecting', async () => {
    const stop = poll(async () => {
      throw new Unauthenticated('no token: enter one');
    });
    await tick();
    stop();
    expect(document.getElementById('connection')?.textContent).toBe('no token');
    expect(document.getElementById('connection')?.dataset.state).toBe('unauthenticated');
  });

  it('tells a lost connection on an ended sweep, whose stream has closed by itself', async () => {
    let up = true;
    vi.stubGlobal('fetch', vi.fn(async (url: string) => {
      if (!up) throw new TypeError('connection refused');
      if (url.endsWith('/events')) {
        // The whole sweep, ended, then the end of the stream.
        const body = `data: ${JSON.stringify({ sweep: { id: 's',
          state: 'SWEEP_STATE_COMPLETED' } })}\n\n`;
        return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } });
      }
      return new Response(JSON.stringify({ role: 'viewer' }));
    }));
    // Its checks, two seconds apart, on a clock the test moves on.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true });
    const session = new SweepSession('s');
    const state = () => document.getElementById('connection')?.dataset.state;
    await vi.waitFor(() => expect(session.model.ended()).toBe(true));
    await vi.waitFor(() => expect(state()).toBe('live'));
    // The coordinator goes away: the next check finds it gone.
    up = false;
    await vi.advanceTimersByTimeAsync(2000);
    await vi.waitFor(() => expect(state()).toBe('reconnecting'));
    session.close();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });
});
