import { describe, expect, it } from 'vitest';
import { CongestionWindow } from './congestionWindow.js';

describe('CongestionWindow', () => {
  it('starts at the configured maximum and never exceeds it', () => {
    const w = new CongestionWindow(8);
    expect(w.limit).toBe(8);
    for (let i = 0; i < 100; i++) w.onOrdered(1);
    expect(w.limit).toBe(8);
    expect(w.halvings).toBe(0);
  });

  it('takes a single restart as noise: the window neither shrinks nor grows', () => {
    const w = new CongestionWindow(8);
    for (let i = 0; i < 50; i++) w.onOrdered(2);
    expect(w.limit).toBe(8);
    expect(w.halvings).toBe(0);
  });

  it('halves on repeated restarts, once per window of batches, down to one batch', () => {
    const w = new CongestionWindow(8);
    // A whole window of restarted batches is one overload episode: halve once per window's worth.
    for (let i = 0; i < 8; i++) w.onOrdered(3);
    expect(w.limit).toBe(4);
    for (let i = 0; i < 4; i++) w.onOrdered(4);
    expect(w.limit).toBe(2);
    for (let i = 0; i < 10; i++) w.onOrdered(3);
    expect(w.limit).toBe(1);
    expect(w.smallestLimit).toBe(1);
    expect(w.halvings).toBe(3);
  });

  it('grows back by about one batch per window of batches ordered at the first attempt', () => {
    const w = new CongestionWindow(8);
    for (let i = 0; i < 8; i++) w.onOrdered(3);
    expect(w.limit).toBe(4);
    for (let i = 0; i < 4; i++) w.onOrdered(1);
    expect(w.limit).toBe(4);
    w.onOrdered(1);
    expect(w.limit).toBe(5);
    for (let i = 0; i < 200; i++) w.onOrdered(1);
    expect(w.limit).toBe(8);
  });
});
