// Load client for bench/table_fanout.py: many seats at one table, some of them rolling dice.
//
// Why Node: a Python client on the same two cores saturates near 40,000 received messages a
// second, so it measured itself, not the server. The Python driver does the setup (accounts,
// campaign, tokens) and the server-side CPU accounting; this client only opens the sockets,
// sends the rolls on schedule and times every delivery. It speaks JSON lines:
//
//   stdin  {"urls": [...], "mode": "bridge" | "relay"}    once: open one socket per url
//   stdout {"event": "seated", "seat_ms": [...], "first_types": [...]}
//   stdin  {"cmd": "settle", "quiet": 1, "within": 60}          until nothing arrives for a while
//   stdout {"event": "settled", "waited_s": ...}
//   stdin  {"cmd": "step", "rate": 400, "senders": 20, "seconds": 4, "tail": 2}
//   stdout {"event": "step", "rolls_sent": ..., "deliveries": ..., "p99_ms": ..., ...}
//   stdin  {"cmd": "quit"}
//
// Each roll's `purpose` carries its send time ("t<ms since the epoch>"); a seat that is shown
// the roll measures send to receipt. A step's deliveries are those of rolls sent during it;
// after the last send it waits until every seat has every roll, or `tail` seconds.

import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import WebSocket from "ws";

const now = () => performance.timeOrigin + performance.now();
const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
const MARK = '"purpose":"t';

let sockets = [];
let mode = "bridge";
let step = null; // the step being measured: {started, samples, late}

let lastReceived = 0;

function onMessage(raw) {
  lastReceived = now();
  // The send time sits in the purpose; finding it needs no full parse of the frame.
  const text = raw.toString();
  const at = text.indexOf(MARK);
  if (at < 0 || (mode === "bridge" && !text.includes('"type":"dice_roll"'))) return;
  const end = text.indexOf('"', at + MARK.length);
  const sent = Number(text.slice(at + MARK.length, end));
  const received = now();
  if (step === null || sent < step.started) return; // a roll of an earlier step, arriving late
  step.samples.push(received - sent);
  step.lastAt = received;
  if (step.waiter && step.samples.length >= step.expected) step.waiter();
}

function open(url) {
  return new Promise((resolve, reject) => {
    const started = now();
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 0 });
    ws.once("error", reject);
    if (mode === "relay") {
      // The bare relay says nothing first: seated once the socket is open.
      ws.once("open", () => {
        ws.on("message", onMessage);
        resolve({ ws, ms: now() - started, type: null });
      });
      return;
    }
    // The bridge authenticates and seats before its first reply.
    ws.once("message", (raw) => {
      let type = null;
      try {
        type = JSON.parse(raw.toString()).type ?? null;
      } catch {}
      ws.on("message", onMessage);
      resolve({ ws, ms: now() - started, type });
    });
  });
}

function rollFrame(purpose) {
  if (mode === "relay") {
    // About the size of the bridge's dice_roll event.
    return JSON.stringify({
      type: "dice_roll",
      id: randomUUID().replaceAll("-", ""),
      seq: 1,
      scope: "campaign",
      data: { expression: "1d20+5", total: 17, rolls: [12], purpose },
    });
  }
  return JSON.stringify({
    type: "dice_roll",
    id: randomUUID().replaceAll("-", ""),
    data: { expression: "1d20+5", purpose },
  });
}

function cuts(samples) {
  if (samples.length === 0) return { p50_ms: 0, p99_ms: 0, p999_ms: 0 };
  const ordered = Float64Array.from(samples).sort();
  const at = (q) => Math.round(ordered[Math.min(ordered.length - 1, Math.floor(q * ordered.length))] * 100) / 100;
  return { p50_ms: at(0.5), p99_ms: at(0.99), p999_ms: at(0.999) };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

async function runStep({ rate, senders, seconds, tail }) {
  const started = now();
  step = { started, samples: [], expected: Infinity, waiter: null, lastAt: started };
  const interval = (senders / rate) * 1000;
  const deadline = started + seconds * 1000;
  const sender = async (index) => {
    let sent = 0;
    let nextAt = started + (index * interval) / senders;
    while (nextAt < deadline) {
      await sleep(nextAt - now());
      const ws = sockets[index];
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(rollFrame(`t${now().toFixed(3)}`));
        sent += 1;
      }
      nextAt += interval;
    }
    return sent;
  };
  const counts = await Promise.all(Array.from({ length: senders }, (_, i) => sender(i)));
  const rollsSent = counts.reduce((a, b) => a + b, 0);
  const current = step;
  current.expected = rollsSent * sockets.length;
  if (current.samples.length < current.expected) {
    await Promise.race([new Promise((resolve) => (current.waiter = resolve)), sleep(tail * 1000)]);
  }
  step = null;
  const elapsed = (Math.max(current.lastAt, deadline) - started) / 1000;
  const deliveries = current.samples.length;
  return {
    event: "step",
    offered_rolls_per_second: rate,
    rolls_sent: rollsSent,
    deliveries,
    expected_deliveries: current.expected,
    lost: current.expected - deliveries,
    elapsed_s: Math.round(elapsed * 1000) / 1000,
    deliveries_per_second: Math.round(deliveries / elapsed),
    ...cuts(current.samples),
  };
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const message = JSON.parse(line);
  if (message.urls) {
    mode = message.mode ?? "bridge";
    const seated = [];
    for (const url of message.urls) seated.push(await open(url)); // one at a time, as a table fills
    sockets = seated.map((s) => s.ws);
    out({ event: "seated", seat_ms: seated.map((s) => s.ms), first_types: [...new Set(seated.map((s) => s.type))] });
  } else if (message.cmd === "settle") {
    // The joins' own fan-out (participant_joined to everyone already seated) drains first:
    // until no seat has received anything for `quiet` seconds, at most `within` seconds.
    const started = now();
    while (now() - lastReceived < message.quiet * 1000 && now() - started < message.within * 1000) {
      await sleep(50);
    }
    out({ event: "settled", waited_s: Math.round(now() - started) / 1000 });
  } else if (message.cmd === "step") {
    out(await runStep(message));
  } else if (message.cmd === "quit") {
    for (const ws of sockets) ws.close();
    break;
  }
}
process.exit(0);
