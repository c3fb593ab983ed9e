// @vitest-environment jsdom
import { Unauthenticated } from './api';
import { poll, showError } from './app';

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
});
