// The overview's charts. Only the Chart.js parts these charts use are registered, to keep the
// bundle small. Each canvas records how many points its chart holds (`data-points`), the
// count a reader of the chart's data sees.
import {
  Chart, BarController, BarElement, LineController, LineElement, PointElement,
  CategoryScale, LinearScale, Tooltip, Legend,
} from 'chart.js';
import { MatrixController, MatrixElement } from 'chartjs-chart-matrix';

Chart.register(BarController, BarElement, LineController, LineElement, PointElement, CategoryScale, LinearScale, Tooltip, Legend, MatrixController, MatrixElement);
Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
Chart.defaults.color = '#1f2933';
Chart.defaults.animation = false;

const charts = new Map();

function draw(canvas, config, points) {
  charts.get(canvas)?.destroy();
  charts.set(canvas, new Chart(canvas, { ...config, options: { responsive: true, maintainAspectRatio: false, ...config.options } }));
  canvas.dataset.points = String(points);
}

/** Distance (bars, km) and utilisation (line, %) per day. */
export function drawTrend(canvas, days) {
  draw(
    canvas,
    {
      type: 'bar',
      data: {
        labels: days.map((d) => d.local_date),
        datasets: [
          { type: 'bar', label: 'Distance (km)', data: days.map((d) => d.distance_m / 1000), backgroundColor: '#1d4ed8', yAxisID: 'km' },
          {
            type: 'line', label: 'Utilisation (%)', data: days.map((d) => (d.utilisation === null ? null : d.utilisation * 100)),
            borderColor: '#b45309', backgroundColor: '#b45309', yAxisID: 'pct',
          },
        ],
      },
      options: {
        scales: {
          km: { position: 'left', beginAtZero: true, title: { display: true, text: 'km' } },
          pct: { position: 'right', beginAtZero: true, suggestedMax: 100, grid: { drawOnChartArea: false }, title: { display: true, text: '%' } },
        },
      },
    },
    days.length,
  );
}

/** Utilisation of each vehicle on each day, darker = more of the shift spent driving. */
export function drawHeatmap(canvas, rows, days) {
  const vehicles = [...new Set(rows.map((r) => r.name))].sort();
  canvas.parentElement.style.height = `${Math.max(200, vehicles.length * 20 + 70)}px`;
  const data = rows.map((r) => ({ x: r.local_date, y: r.name, v: r.utilisation }));
  draw(
    canvas,
    {
      type: 'matrix',
      data: {
        datasets: [{
          label: 'Utilisation',
          data,
          backgroundColor: (c) => shade(c.raw?.v),
          borderColor: '#ffffff',
          borderWidth: 1,
          width: ({ chart }) => (chart.chartArea?.width ?? 0) / days.length - 1,
          height: ({ chart }) => (chart.chartArea?.height ?? 0) / Math.max(1, vehicles.length) - 1,
        }],
      },
      options: {
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: (items) => `${items[0].raw.y}, ${items[0].raw.x}`,
              label: (item) => (item.raw.v === null ? 'no shift' : `utilisation ${(item.raw.v * 100).toFixed(1)} %`),
            },
          },
        },
        scales: {
          x: { type: 'category', labels: days, offset: true, grid: { display: false } },
          y: { type: 'category', labels: vehicles, offset: true, grid: { display: false }, ticks: { autoSkip: false } },
        },
      },
    },
    data.length,
  );
}

function shade(v) {
  if (v === null || v === undefined) return '#e5e7eb';
  const a = Math.min(1, Math.max(0.08, v / 0.6)); // 60 % of the shift driving is already busy
  return `rgba(29, 78, 216, ${a.toFixed(2)})`;
}

/** Idle hours per vehicle, most first. */
export function drawIdle(canvas, vehicles) {
  const rows = vehicles.filter((v) => v.idle_s !== null).sort((a, b) => b.idle_s - a.idle_s);
  canvas.parentElement.style.height = `${Math.max(160, rows.length * 22 + 60)}px`;
  draw(
    canvas,
    {
      type: 'bar',
      data: {
        labels: rows.map((v) => v.name),
        datasets: [{ label: 'Idle (h)', data: rows.map((v) => v.idle_s / 3600), backgroundColor: '#b45309' }],
      },
      options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, title: { display: true, text: 'hours' } }, y: { ticks: { autoSkip: false } } } },
    },
    rows.length,
  );
}

/** Alarms per class (`/alarms/summary`), and how many of them are still open. */
export function drawAlarmClasses(canvas, items) {
  const datasets = [
    { label: 'Alarms', data: items.map((i) => i.alarms), backgroundColor: '#b91c1c' },
    { label: 'Open', data: items.map((i) => i.open), backgroundColor: '#6b7280' },
  ];
  draw(
    canvas,
    { type: 'bar', data: { labels: items.map((i) => i.alarm_class), datasets }, options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } },
    items.length,
  );
}
