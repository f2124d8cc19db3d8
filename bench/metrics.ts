/**
 * `npm run bench:metrics`: what Prometheus scraping costs. A local 3-member cluster (real
 * `wardend` processes, fsync on) takes puts of 256-byte values to 1,000 keys at 64 in flight over
 * one client connection to the leader, in turns: with every member's /metrics scraped once a
 * second, and without. Turns alternate (A B, B A, …) so a noisy neighbour or a drift hits both alike; the
 * figure is the median over rounds of scraped ÷ not scraped.
 * Flags: --seconds N per turn (default 5), --rounds N (default 6).
 *
 * Must never: run in CI; be read as a test; leave members behind.
 */

import { parseArgs } from 'node:util';
import { connect } from '../client/index.js';
import { Cluster } from '../test/integration/cluster.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '6' } } });
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const IN_FLIGHT = 64;
const value = 'x'.repeat(256);

const cluster = await Cluster.plan(3);
try {
  for (const m of cluster.members) cluster.launch(m);
  const leader = await cluster.leader();
  const client = connect({ endpoints: cluster.member(leader).clientUrl, timeoutMs: 20_000 });
  const putsFor = async (ms: number): Promise<number> => {
    const until = performance.now() + ms;
    let done = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async (_, lane) => {
        for (let i = lane; performance.now() < until; i += IN_FLIGHT) {
          await client.put(`/bench/k${i % 1_000}`, value);
          done += 1;
        }
      }),
    );
    return done / (ms / 1_000);
  };
  let scrapes = 0;
  const scraped = async (ms: number): Promise<number> => {
    const timer = setInterval(() => {
      for (const m of cluster.members) void fetch(`${m.httpUrl}/metrics`).then((r) => r.text()).then(() => void (scrapes += 1));
    }, 1_000);
    try {
      return await putsFor(ms);
    } finally {
      clearInterval(timer);
    }
  };
  await putsFor(2_000); // warm-up, not recorded
  const ratios: number[] = [];
  console.log(`puts/s at ${IN_FLIGHT} in flight, ${seconds} s per turn:`);
  for (let round = 0; round < rounds; round++) {
    // A B, then B A: a drift over the run (the store warming, a neighbour) falls on both alike.
    let plain: number;
    let withScrapes: number;
    if (round % 2 === 0) {
      plain = await putsFor(seconds * 1_000);
      withScrapes = await scraped(seconds * 1_000);
    } else {
      withScrapes = await scraped(seconds * 1_000);
      plain = await putsFor(seconds * 1_000);
    }
    ratios.push(withScrapes / plain);
    console.log(`  round ${round + 1}: not scraped ${plain.toFixed(0)}/s, scraped every second ${withScrapes.toFixed(0)}/s (×${(withScrapes / plain).toFixed(3)})`);
  }
  ratios.sort((a, b) => a - b);
  const median = rounds % 2 === 1 ? ratios[(rounds - 1) / 2]! : (ratios[rounds / 2 - 1]! + ratios[rounds / 2]!) / 2;
  console.log(`scraped ÷ not scraped, median of ${rounds}: ×${median.toFixed(3)} (range ×${ratios[0]!.toFixed(3)}–×${ratios.at(-1)!.toFixed(3)}; ${scrapes} scrapes answered)`);
  const text = await (await fetch(`${cluster.member(leader).httpUrl}/metrics`)).text();
  console.log(`one scrape of the leader: ${text.length} bytes`);
  await client.close();
} finally {
  await cluster.stop();
}
