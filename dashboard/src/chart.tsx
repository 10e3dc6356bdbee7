// A uPlot time chart with its figures also as a table: the canvas is for
// the eye, the table for screen readers and for anyone who wants numbers.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";

export interface Series {
  label: string;
  color: string;
  values: (number | null)[];
}

export function Chart({ title, times, series }: { title: string; times: number[]; series: Series[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const labels = series.map((s) => s.label).join(",");

  useEffect(() => {
    const el = box.current!;
    const u = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height: 180,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: false }))],
        axes: [{ stroke: "#333" }, { stroke: "#333", size: 50 }],
        legend: { live: false },
      },
      [times, ...series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    );
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [labels]);

  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [times, series]);

  const last = times.length - 1;
  const summary = last >= 0 ? series.map((s) => `${s.label} ${s.values[last] ?? "none"}`).join(", ") : "no data";
  return (
    <figure class="chart" data-chart={title}>
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title}; this minute: ${summary}`} />
      <details>
        <summary>{title} as a table</summary>
        <div class="scroll" role="region" aria-label={`${title} table`} tabIndex={0}>
          <table>
            <thead>
              <tr>
                <th scope="col">minute</th>
                {series.map((s) => (
                  <th scope="col">{s.label}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {times.map((t, i) => (
                <tr key={t} data-t={t}>
                  <th scope="row">{new Date(t * 1000).toLocaleTimeString(undefined, { hour12: false })}</th>
                  {series.map((s) => (
                    <td data-series={s.label}>{s.values[i] ?? "–"}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
