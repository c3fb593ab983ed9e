import {
  bytes, count, countTicks, decimalsFor, duration, loss, noValues, num, plural, rate, relative,
  signed, stateName,
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

  it('writes counts short, with the prefixes throughputs use', () => {
    expect(count(950)).toBe('950');
    expect(count(1234)).toBe('1.2k');
    expect(count(320000)).toBe('320k');
    expect(count(4e11)).toBe('400G');
    expect(count(3.2e15)).toBe('3.2P');
  });

  it('labels ticks short and never two alike', () => {
    // The FLOPs axis: full numbers ("400,000,000,000") overlapped.
    expect(countTicks([0, 2e11, 4e11], 2e11)).toEqual(['0', '200G', '400G']);
    expect(countTicks([1.2e9, 1.25e9, 1.3e9], 5e7)).toEqual(['1.20G', '1.25G', '1.30G']);
    expect(countTicks([250000, 500000, 750000], 250000)).toEqual(['250k', '500k', '750k']);
    expect(countTicks([0, 50, 100], 50)).toEqual(['0', '50', '100']);
    expect(decimalsFor(2.5)).toBe(1);
    expect(decimalsFor(0.00004)).toBe(5);
    expect(decimalsFor(200)).toBe(0);
    expect(decimalsFor(0.145)).toBe(1);
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

  it('writes one of a thing in the singular', () => {
    expect(plural(1, 'line')).toBe('1 line');
    expect(plural(0, 'line')).toBe('0 lines');
    expect(plural(12, 'cell')).toBe('12 cells');
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
