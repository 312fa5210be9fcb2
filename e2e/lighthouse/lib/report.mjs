// Renders the Lighthouse suite's results (tests/lighthouse.test.mjs) as Markdown.

const kb = (bytes) => (bytes === undefined ? '–' : `${(bytes / 1000).toFixed(1)} KB`);
const seconds = (ms) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);
const millis = (ms) => (ms === undefined ? '–' : `${Math.round(ms)} ms`);
const loads = (averages) => (averages ? averages.join(', ') : '–');

/** What the numbers above mean, and what was tried; kept with the renderer so each run keeps it. */
const NOTES = [
  '## Reading the numbers',
  '',
  '- **How the start runs** (frontend/index.html, frontend/src/main.rs): the HTML carries a static shell ' +
    '(top bar and the login or sign-up form, in the app\'s markup) painted as soon as the HTML and CSS are in. ' +
    'The WASM (preloaded from `<head>`) compiles with `WebAssembly.compileStreaming`, off the main thread but for ' +
    'feeding it the streamed bytes; then, in a later task, it is instantiated and `main` mounts the app under the ' +
    'shell. A start-up executor gives each future the mount spawns (the router\'s page, the socket, the effects) ' +
    'its first poll in a task of its own; when they all ran the document gets `confab-ready` and the shell is ' +
    'removed at the next frame. The User Timing marks `confab:compiled`, `confab:mounted`, `confab:ready` show ' +
    'the steps.',
  '- **Largest Contentful Paint** on `/login` is the shell\'s form (the app\'s copy of it is the same size, so ' +
    'it does not replace it). Lighthouse, though, simulates the phone from a load it observes unthrottled on ' +
    'loopback, and counts for LCP every request that finished before the observed LCP. Here the 350 KB WASM ' +
    'arrives within ~100 ms, usually before the shell\'s first frame is presented (Chromium often presents ' +
    'nothing for the first ~1 s of a headless load on this machine), so the simulated LCP includes the WASM\'s ' +
    'download on slow 4G: ~2.7 s, where a real phone on that network shows the shell at ~1 s. In the runs where ' +
    'the frame is presented first, LCP equals FCP. Delaying the WASM\'s download until the shell is on screen ' +
    'would "fix" the number and make the app start later for everyone, so it is not done.',
  '- **Total Blocking Time** is what moves the Performance score between runs: Lighthouse multiplies the ' +
    'main-thread time it observes by 4, and on this shared 2-core machine the observed time itself doubles or ' +
    'triples when other builds run. The room page builds more (the log, the members), in one task of the ' +
    'room page\'s own, which is where its TBT comes from.',
  '- **Tried and not kept**: `wasm-opt -Oz` (npm `binaryen` 132) makes the WASM 7 % smaller as built ' +
    '(1,259 → 1,170 KB) but not as sent (brotli 348.4 → 347.9 KB), for +42 s of build and a 104 MB package; ' +
    '`opt-level = "s"` makes it larger (1,512 KB, 378 KB brotli) and no faster to mount; inlining the stylesheet ' +
    'into `index.html` saves a request but did not move FCP measurably (Lighthouse counts the HTML\'s round trips ' +
    'first) and re-sends 4 KB with every deploy.',
  '',
];

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
      `Load average (1, 5, 15 min) on the ${report.environment.cpus} CPUs: ${loads(report.environment.loadAverageBefore)} ` +
      `before the runs, ${loads(report.environment.loadAverageAfter)} after. Each page is measured ` +
      `${first.performanceRuns?.length ?? 1} times and the run with the median Performance score is shown. ` +
      'Lighthouse simulates the phone from what it observes here (the main-thread time it sees is multiplied ' +
      'by 4), so the Performance score moves with the machine\'s load: the scores are reported, not asserted.',
    '',
    `| | ${pages.map((name) => `\`${report[name].url}\``).join(' | ')} |`,
    `|---|${pages.map(() => '---:').join('|')}|`,
    row('Performance', (r) => r.scores.performance),
    row('Performance, every run', (r) => (r.performanceRuns ?? [r.scores.performance]).join(', ')),
    row('Accessibility', (r) => r.scores.accessibility),
    row('Best Practices', (r) => r.scores['best-practices']),
    row('First Contentful Paint', (r) => seconds(r.metrics.fcpMs)),
    row('Largest Contentful Paint', (r) => seconds(r.metrics.lcpMs)),
    row('Time to Interactive', (r) => seconds(r.metrics.ttiMs)),
    row('Total Blocking Time', (r) => millis(r.metrics.tbtMs)),
    row('Speed Index', (r) => seconds(r.metrics.speedIndexMs)),
    row('Cumulative Layout Shift', (r) => (r.metrics.cls ?? 0).toFixed(3)),
    row('Transferred', (r) => kb(r.transferBytes)),
    row('Long tasks (simulated)', (r) => (r.longTasksMs?.length ? r.longTasksMs.map((ms) => `${ms}`).join(', ') + ' ms' : 'none')),
    row('App ready (observed, unthrottled)', (r) => millis(r.userTimings?.['confab:ready'])),
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
  lines.push(...NOTES);
  return `${lines.join('\n')}`;
}
