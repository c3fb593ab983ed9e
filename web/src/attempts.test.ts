import type { Attempt } from './gen/ablate/v1/job';
import { attemptName, attemptOrdinals, attemptsText, permanentFailure, whyNotStarted } from
  './attempts';

describe('attemptOrdinals', () => {
  it('numbers a job\'s attempts from 1 in the order the coordinator made them', () => {
    const ordinals = attemptOrdinals([{ id: '103' }, { id: '9' }, { id: '57' }]);
    expect([...ordinals]).toEqual([['9', 1], ['57', 2], ['103', 3]]);
  });

  it('numbers each job\'s own among many jobs\' attempts', () => {
    const ordinals = attemptOrdinals([{ id: '19', jobId: 'a' }, { id: '9', jobId: 'a' },
      { id: '15', jobId: 'b' }, { id: '11', jobId: 'b' }, { id: '12', jobId: 'c' }]);
    expect(Object.fromEntries(ordinals)).toEqual({ 9: 1, 19: 2, 11: 1, 15: 2, 12: 1 });
  });
});

describe('attemptName', () => {
  it('gives the job\'s count and the coordinator\'s id', () => {
    expect(attemptName(2, '19')).toBe('attempt 2 (id 19)');
    expect(attemptName(undefined, '19')).toBe('attempt id 19');
  });
});

describe('attemptsText', () => {
  it('counts what max_attempts limits, and the job\'s uncounted attempts apart', () => {
    expect(attemptsText({ attempts: 2, maxAttempts: 3 })).toBe('2/3');
    expect(attemptsText({ attempts: 3, maxAttempts: 2, uncountedAttempts: 1 }))
      .toBe('2/2 (+1 not counted)');
    expect(attemptsText({})).toBe('0/0');
  });
});

describe('whyNotStarted', () => {
  const refused = 'not started: no free slot: slot 0 is busy';
  it('gives the worker\'s reason where the attempt never started its trainer', () => {
    expect(whyNotStarted({ id: '4', neverStarted: true, exit: { reason: refused } }))
      .toBe('no free slot: slot 0 is busy');
  });

  it('goes by the stored fact, not by the reason\'s words', () => {
    expect(whyNotStarted({ id: '4', exit: { reason: refused } })).toBeUndefined();
    expect(whyNotStarted({ id: '4', neverStarted: true, exit: { reason: 'shutting down' } }))
      .toBe('shutting down');
    expect(whyNotStarted(undefined)).toBeUndefined();
  });
});

describe('permanentFailure', () => {
  const failed = (id: string, exit: Attempt['exit']): Attempt =>
    ({ id, state: 'ATTEMPT_STATE_FAILED', exit });

  it('says why the last attempt failed where another would fail alike', () => {
    const missing = 'exited with code 3: dataset /d: no directory /d';
    expect(permanentFailure([failed('11', { exitCode: 3, signal: 0, reason: missing })]))
      .toBe(missing);
    // Refused by its worker: no code, a reason.
    const outside = 'not started: dataset /x is outside this worker\'s --data-root (/data)';
    expect(permanentFailure([failed('13', { exitCode: 0, signal: 0, reason: outside }),
      failed('6', { exitCode: 0, reason: outside })])).toBe(outside);
    expect(permanentFailure([failed('4', { exitCode: 2 })])).toBe('exit code 2');
  });

  it('says nothing of a failure a retry may not meet, nor of another end', () => {
    expect(permanentFailure([failed('4', { exitCode: 1, reason: 'exited with code 1' })]))
      .toBeUndefined();
    expect(permanentFailure([failed('4', { exitCode: -1, signal: 9 })])).toBeUndefined();
    expect(permanentFailure([{ id: '5', state: 'ATTEMPT_STATE_LOST' }])).toBeUndefined();
    // Only the newest counts: a permanent failure before a cancelled retry is old news.
    expect(permanentFailure([failed('9', { exitCode: 3 }),
      { id: '10', state: 'ATTEMPT_STATE_CANCELLED' }])).toBeUndefined();
    expect(permanentFailure([])).toBeUndefined();
  });
});
