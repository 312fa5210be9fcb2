// Renders the Lighthouse suite's results (tests/lighthouse.test.mjs) as Markdown.

const kb = (bytes) => (bytes === undefined ? '–' : `${(bytes / 1000).toFixed(1)} KB`);
const seconds = (ms) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);
const millis = (ms) => (ms === undefined ? '–' : `${Math.round(ms)} ms`);

export function renderMarkdown(report) {
  const pages = ['login', 'room'].filter((name) => report[name]);
  const first = report[pages[0]];
  const row = (label, cell) => `| ${label} | ${pages.map((name) => cell(report[name])).join(' | ')} |`;
  const lines = [
    '# The web app on a phone: Lighthouse',
    '',
    `Lighthouse ${first.lighthouse} with its mobile defaults (simulated slow 4G, 4× CPU slowdown), ` +
      `${first.chrome ?? 'Chromium'} headless, against a release server on loopback ` +
      `(\`bash e2e/suites/15-lighthouse.sh\`; \`just lighthouse\` rewrites this file). ` +
      `Load average during the run: ${report.environment.loadAverage.join(', ')} on ${report.environment.cpus} CPUs ` +
      '(simulated throttling makes the scores fairly independent of the load).',
    '',
    `| | ${pages.map((name) => `\`${report[name].url}\``).join(' | ')} |`,
    `|---|${pages.map(() => '---:').join('|')}|`,
    row('Performance', (r) => r.scores.performance),
    row('Accessibility', (r) => r.scores.accessibility),
    row('Best Practices', (r) => r.scores['best-practices']),
    row('First Contentful Paint', (r) => seconds(r.metrics.fcpMs)),
    row('Largest Contentful Paint', (r) => seconds(r.metrics.lcpMs)),
    row('Time to Interactive', (r) => seconds(r.metrics.ttiMs)),
    row('Total Blocking Time', (r) => millis(r.metrics.tbtMs)),
    row('Speed Index', (r) => seconds(r.metrics.speedIndexMs)),
    row('Cumulative Layout Shift', (r) => (r.metrics.cls ?? 0).toFixed(3)),
    row('Transferred', (r) => kb(r.transferBytes)),
    '',
    `The WASM: ${kb(report.wasmRaw)} as built, ${kb(report.wasmGzip)} with gzip -9, ` +
      `**${kb(report.wasmBrotli)} with brotli -q 11** (what a browser downloads).`,
    '',
  ];
  for (const name of pages) {
    const r = report[name];
    lines.push(`## Requests of \`${r.url}\``, '', '| request | transferred | size |', '|---|---:|---:|');
    for (const request of r.requests) {
      lines.push(`| \`${request.url}\` | ${kb(request.transferBytes)} | ${kb(request.resourceBytes)} |`);
    }
    if (r.failedAudits.length > 0) lines.push('', `Audits not passed: ${r.failedAudits.map((id) => `\`${id}\``).join(', ')}.`);
    lines.push('');
  }
  return `${lines.join('\n')}`;
}
