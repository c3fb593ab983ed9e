// @vitest-environment jsdom
import { Unauthenticated, api, onTokenChange, setToken, takeTokenFromAddress, token } from './api';

describe('the token', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('tells its listeners of every change: field, address or another tab', () => {
    const heard: (string | null)[] = [];
    onTokenChange(() => heard.push(token()));
    setToken('a'.repeat(32));
    setToken('a'.repeat(32));  // no change, nothing to tell
    history.replaceState(null, '', `#/jobs/j1&token=${'b'.repeat(32)}`);
    takeTokenFromAddress();
    expect(location.hash).toBe('#/jobs/j1');
    localStorage.setItem('ablate.token', 'c'.repeat(32));
    window.dispatchEvent(new StorageEvent('storage', { key: 'ablate.token' }));
    expect(heard).toEqual(['a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32)]);
  });

  it('turns a 401 into advice for the page, not the CLI', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ error:
      'GET /api/v1/sweeps needs a bearer token of role viewer or user (Authorization: ...)' }),
    { status: 401 })));
    setToken('');
    const refused = await api.sweeps().catch((e) => e);
    expect(refused).toBeInstanceOf(Unauthenticated);
    expect(refused.message).toMatch(/^no token: enter .* in the field above$/);
  });
});
