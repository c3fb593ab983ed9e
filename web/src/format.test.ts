import {
  bytes, duration, loss, noValues, num, rate, relative, signed, stateName,
} from './format';

describe('format', () => {
  it('writes units with sensible digits', () => {
    expect(bytes(2 * 1024 ** 3)).toBe('2.0 GiB');
    expect(bytes(512)).toBe('512 B');
    expect(rate(1234)).toBe('1.2k tok/s');
    expect(rate(400)).toBe('400 tok/s');
    expect(loss(2.34567)).toBe('2.346');
    expect(signed(-0.15)).toBe('−0.150');
    expect(signed(0.05)).toBe('+0.050');
    expect(num(1234.5678)).toBe('1235');
    expect(num(0.0123456)).toBe('0.0123');
    expect(num(undefined)).toBe('–');
  });

  it('writes durations and relative times', () => {
    expect(duration(42)).toBe('42 s');
    expect(duration(3725)).toBe('1 h 2 min');
    expect(duration(5 * 86400)).toBe('5 d');
    const now = Date.parse('2026-01-01T12:00:00Z');
    expect(relative('2026-01-01T11:55:00Z', now)).toBe('5 min ago');
    expect(relative('2026-01-01T14:00:00Z', now)).toBe('in 2 h 0 min');
    expect(relative(undefined, now)).toBe('–');
  });

  it('names states', () => {
    expect(stateName('JOB_STATE_RUNNING')).toBe('running');
    expect(stateName('SWEEP_STATE_COMPLETED')).toBe('completed');
  });

  it('says "yet" of a missing value only while one may still come', () => {
    expect(noValues('MFU', false)).toBe('no MFU yet');
    expect(noValues('MFU', true)).toBe('no MFU: no job reported it');
  });
});
