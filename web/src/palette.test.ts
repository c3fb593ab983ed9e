import { OKABE_ITO, diverging, seriesColor, textOn, viridis } from './palette';

describe('palette', () => {
  it('spans viridis from dark purple to yellow', () => {
    expect(viridis(0)).toBe('#440154');
    expect(viridis(1)).toBe('#fde725');
    expect(viridis(-3)).toBe('#440154');
  });

  it('centres the diverging scale on near-white', () => {
    expect(diverging(0)).toBe('#f7f7f7');
    expect(diverging(-1)).toBe('#2166ac');
    expect(diverging(1)).toBe('#b25818');
  });

  it('picks readable text and cycles Okabe-Ito', () => {
    expect(textOn('#440154')).toBe('#ffffff');
    expect(textOn('#fde725')).toBe('#000000');
    expect(seriesColor(OKABE_ITO.length)).toBe(OKABE_ITO[0]);
  });
});
