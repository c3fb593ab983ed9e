// @vitest-environment jsdom
import { cancelButton, loadRole } from './actions';

describe('actions', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('asks about one job in a job\'s words, and about a sweep in a sweep\'s', () => {
    const confirm = vi.fn(() => false);
    vi.stubGlobal('confirm', confirm);
    cancelButton('j1', 'job').click();
    cancelButton('s1', 'sweep').click();
    expect(confirm.mock.calls[0]).toEqual(
      ['Cancel job j1? It stops if it runs, and never starts if it waits.']);
    expect(confirm.mock.calls[1]).toEqual(
      ['Cancel sweep s1? Its running jobs stop and pending ones never start.']);
  });

  it('marks the page with the newest token\'s role, whichever answer comes first', async () => {
    const answers: ((role: string) => void)[] = [];
    vi.stubGlobal('fetch', vi.fn(() => new Promise((resolve) => answers.push((role) =>
      resolve(new Response(JSON.stringify({ role }), { status: 200 }))))));
    const first = loadRole();
    const second = loadRole();
    answers[1]('viewer');
    await second;
    answers[0]('user');
    await first;
    expect(document.body.dataset.role).toBe('viewer');
  });
});
