// Charts drawn with uPlot (a small canvas time-series library, served from this origin). Each chart element gets
// data-points (how many points it drew), so a test or a person can tell an empty chart from a drawn one.
import uPlot from './vendor/uPlot.esm.js';

export const CONSUMPTION_COLOUR = '#1f6f9f';
export const CURRENT_COLOUR = '#c2410c';
const HEIGHT = 260;

/** Consumption per bucket as bars: x = bucket starts (ISO), y = kWh (null where a bucket has no figure). */
export function consumptionChart(container, starts, kwh) {
  return draw(container, starts, kwh, {
    label: 'Energy used',
    unit: 'kWh',
    stroke: CONSUMPTION_COLOUR,
    fill: CONSUMPTION_COLOUR,
    paths: uPlot.paths.bars({ size: [0.8, 64], align: 1 }),
    points: { show: false },
  });
}

/** Current over time as a line: x = reading times (ISO), y = amperes. */
export function currentChart(container, times, amperes) {
  return draw(container, times, amperes, {
    label: 'Current',
    unit: 'A',
    stroke: CURRENT_COLOUR,
    width: 2,
    points: { show: amperes.length < 200 },
  });
}

function draw(container, isoTimes, values, { unit, ...series }) {
  const xs = isoTimes.map((iso) => Date.parse(iso) / 1000);
  container.dataset.points = String(values.filter((value) => value !== null).length);
  const chart = new uPlot(
    {
      width: widthOf(container),
      height: HEIGHT,
      scales: { x: { time: true } },
      series: [{}, { ...series, value: (_chart, value) => (value === null ? '–' : `${value} ${unit}`) }],
      axes: [{}, { label: unit, size: 60 }],
      cursor: { drag: { x: false, y: false } },
    },
    [xs, values],
    container,
  );
  const resize = () => chart.setSize({ width: widthOf(container), height: HEIGHT });
  window.addEventListener('resize', resize);
  return {
    destroy() {
      window.removeEventListener('resize', resize);
      chart.destroy();
    },
  };
}

function widthOf(container) {
  return Math.max(320, container.clientWidth || container.parentElement.clientWidth);
}
