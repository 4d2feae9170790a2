/**
 * The --plot figure: (a) latency CDF with the p50 and p99 marked, (b) commands completed per
 * second, under the run's name and parameters. Built as a vega-lite spec, compiled to vega and
 * rendered to SVG headless (no browser, no canvas); PNG via resvg.
 */
import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { ThroughputPoint } from './throughput.js';

export const PLOT_EXTENSIONS = ['.svg', '.png'] as const;

/** A CDF line needs no more points than a figure has pixels; millions would bloat the SVG. */
export const CDF_MAX_POINTS = 1000;
/** The log axis cannot show 0; a latency below 1 µs is drawn at 1 µs. */
const MIN_PLOTTED_LATENCY_MS = 0.001;
/** PNG pixels per SVG pixel: sharp on high-density screens and in papers. */
const PNG_ZOOM = 2;

export interface CdfPoint {
  readonly latencyMs: number;
  /** Fraction of commands with latency ≤ latencyMs. */
  readonly fraction: number;
}

/** Up to maxPoints + 1 evenly spaced ranks of an ascending array, always including both ends. */
export function cdfPoints(sortedLatenciesUs: Float64Array, maxPoints = CDF_MAX_POINTS): CdfPoint[] {
  const n = sortedLatenciesUs.length;
  if (n === 0) return [];
  const steps = Math.min(maxPoints, n - 1);
  const points: CdfPoint[] = [];
  for (let i = 0; i <= steps; i++) {
    const rank = steps === 0 ? n - 1 : Math.round((i * (n - 1)) / steps);
    const latencyMs = Math.max((sortedLatenciesUs[rank] as number) / 1000, MIN_PLOTTED_LATENCY_MS);
    points.push({ latencyMs, fraction: (rank + 1) / n });
  }
  return points;
}

/** A latency marked on the CDF (a vertical rule with its label). */
export interface LatencyMark {
  readonly label: string;
  readonly latencyMs: number;
  /** Where on the CDF the label sits (the quantile: 0.5 for the median). */
  readonly fraction: number;
}

export interface PlotData {
  readonly title: string;
  /** Under the title: the run's parameters. */
  readonly subtitle?: string;
  readonly marks?: readonly LatencyMark[];
  readonly cdf: readonly CdfPoint[];
  readonly throughput: readonly ThroughputPoint[];
}

export function plotSpec(data: PlotData): TopLevelSpec {
  const panel = { width: 380, height: 260 };
  const marks = (data.marks ?? []).map((m) => ({
    latencyMs: Math.max(m.latencyMs, MIN_PLOTTED_LATENCY_MS),
    fraction: m.fraction,
    text: `${m.label} ${m.latencyMs < 10 ? m.latencyMs.toFixed(2) : m.latencyMs.toFixed(1)} ms`,
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: data.subtitle === undefined || data.subtitle === '' ? data.title : { text: data.title, subtitle: data.subtitle },
    background: 'white',
    padding: 12,
    hconcat: [
      {
        ...panel,
        title: '(a) latency distribution',
        layer: [
          {
            data: { values: [...data.cdf] },
            mark: { type: 'line', interpolate: 'step-after' },
            encoding: {
              // nice: false — rounding a log axis out to powers of ten would squeeze the curve into a sliver.
              x: { field: 'latencyMs', type: 'quantitative', scale: { type: 'log', nice: false }, title: 'latency (ms, log scale)' },
              y: { field: 'fraction', type: 'quantitative', scale: { domain: [0, 1] }, title: 'fraction of commands (CDF)' },
            },
          },
          {
            data: { values: marks },
            mark: { type: 'rule', strokeDash: [4, 3], color: '#c0362c' },
            encoding: { x: { field: 'latencyMs', type: 'quantitative' } },
          },
          {
            data: { values: marks },
            mark: { type: 'text', align: 'right', dx: -4, dy: -6, color: '#c0362c', fontSize: 11 },
            encoding: { x: { field: 'latencyMs', type: 'quantitative' }, y: { field: 'fraction', type: 'quantitative' }, text: { field: 'text' } },
          },
        ],
      },
      {
        ...panel,
        title: '(b) throughput over time',
        data: { values: [...data.throughput] },
        mark: { type: 'line', point: data.throughput.length < 60 },
        encoding: {
          x: { field: 'second', type: 'quantitative', title: 'time since first completion (s)' },
          y: { field: 'commands', type: 'quantitative', title: 'commands completed per second' },
        },
      },
    ],
  };
}

/** The packages --plot needs: optional peer dependencies of pompe-ts, so replicas need not install them. */
export const PLOT_PACKAGES = ['vega', 'vega-lite', '@resvg/resvg-js'] as const;

/** Why --plot cannot draw (the libraries are not installed), or null when it can. */
export async function missingPlotLibraries(): Promise<string | null> {
  const missing: string[] = [];
  for (const name of PLOT_PACKAGES) {
    try {
      await import(name);
    } catch {
      missing.push(name);
    }
  }
  if (missing.length === 0) return null;
  return `--plot needs the optional packages ${missing.join(', ')}, which are not installed: npm install ${PLOT_PACKAGES.join(' ')}`;
}

async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Loaded on demand: vega is large, optional, and most runs of the script draw nothing.
  const [vegaLite, vega] = await Promise.all([import('vega-lite'), import('vega')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes the figure as SVG or PNG, chosen by the extension of `outPath`. */
export async function writePlot(data: PlotData, outPath: string): Promise<void> {
  const svg = await renderSvg(plotSpec(data));
  if (extname(outPath).toLowerCase() === '.svg') {
    await writeFile(outPath, svg);
    return;
  }
  const { Resvg } = await import('@resvg/resvg-js');
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: PNG_ZOOM }, font: { loadSystemFonts: true } }).render().asPng();
  await writeFile(outPath, png);
}
