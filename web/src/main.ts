// The Ablate dashboard: routes (#/, #/sweeps/<id>[/grid|curves|cost], #/jobs/<id>, #/workers),
// the header's theme switch, token field and its forget button, and keyboard shortcuts (g s:
// sweeps, g w: workers, 1-3: a sweep's tabs).
import { onTokenChange, setToken, takeTokenFromAddress, token } from './api';
import { closeSweepSession, setConnection, showError } from './app';
import './style.css';
import { jobView } from './views/job';
import { TABS, sweepView, tabOf, unknownTabView } from './views/sweep';
import { sweepsView } from './views/sweeps';
import { loadRole } from './views/actions';
import { notFoundView } from './views/not_found';
import { workersView } from './views/workers';

const THEME_KEY = 'ablate.theme';

function applyTheme(theme: string | null): void {
  const dark = theme ? theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

let current: { el: HTMLElement; dispose: () => void } | null = null;
let routing = false;

function view(hash: string): { el: HTMLElement; dispose: () => void } {
  const sweep = hash.match(/^#\/sweeps\/([^/]+)(?:\/([^/]+))?$/);
  const tab = sweep && tabOf(sweep[2]);
  if (sweep && tab) return sweepView(decodeURIComponent(sweep[1]), tab);
  closeSweepSession();
  document.title = 'Ablate';
  if (sweep) return unknownTabView(decodeURIComponent(sweep[1]), sweep[2]);
  const job = hash.match(/^#\/jobs\/([^/]+)$/);
  if (job) return jobView(decodeURIComponent(job[1]));
  if (hash === '#/workers') return workersView();
  if (['', '#', '#/'].includes(hash)) return sweepsView();
  return notFoundView(`Nothing lives at ${hash}: the dashboard's pages are #/ (sweeps), ` +
    '#/sweeps/ID, #/jobs/ID and #/workers.');
}

function route(): void {
  routing = true;
  takeTokenFromAddress();
  routing = false;
  current?.dispose();
  showError('');
  const hash = location.hash.replace(/\?.*$/, '');
  current = view(hash);
  const main = document.getElementById('view') as HTMLElement;
  main.replaceChildren(current.el);
  for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    const active = a.dataset.nav === (hash === '#/workers' ? 'workers' : 'sweeps');
    a.classList.toggle('active', active);
  }
}

const forget = document.getElementById('token-forget') as HTMLButtonElement;

// Forgetting is offered only while there is a token to forget.
function showTokenControls(): void {
  forget.hidden = !token();
}

// A new token may grant another role and sees through other eyes: the role is asked again,
// the sweep's stream reopened with it and the view drawn afresh (route does that itself when
// the token came in the address it is reading).
onTokenChange(() => {
  showTokenControls();
  closeSweepSession();
  setConnection('connecting');
  void loadRole();
  if (!routing) route();
});

let prefix = '';
document.addEventListener('keydown', (event) => {
  const target = event.target as HTMLElement;
  if (['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName) || event.ctrlKey || event.metaKey ||
    event.altKey) return;
  if (prefix === 'g') {
    prefix = '';
    if (event.key === 's') location.hash = '#/';
    if (event.key === 'w') location.hash = '#/workers';
    return;
  }
  if (event.key === 'g') {
    prefix = 'g';
    return;
  }
  const sweep = location.hash.match(/^#\/sweeps\/([^/?]+)/);
  const n = Number(event.key);
  if (sweep && n >= 1 && n <= TABS.length) location.hash = `#/sweeps/${sweep[1]}/${TABS[n - 1]}`;
});

document.getElementById('theme')?.addEventListener('click', () => {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
  route();
});

document.getElementById('token-form')?.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('token-input') as HTMLInputElement;
  setToken(input.value.trim());
  input.value = '';
});

forget.addEventListener('click', () => setToken(''));

applyTheme(localStorage.getItem(THEME_KEY));
window.addEventListener('hashchange', route);
route();  // takes a token handed over in the address first
showTokenControls();
void loadRole();
