const url = Deno.args[0]; const end = performance.now() + Number(Deno.args[1]) * 1000; const enc = Deno.args[2]; let n = 0; const lat: number[] = []; let bytes = 0;
while (performance.now() < end) { const t = performance.now(); const r = await fetch(url, enc ? { headers: { "accept-encoding": enc } } : {}); bytes = (await r.arrayBuffer()).byteLength; lat.push(performance.now() - t); n++; await new Promise((r) => setTimeout(r, 20)); }
lat.sort((a, b) => a - b);
console.log("scrapes", n, "bytes", bytes, "p50", lat[n >> 1].toFixed(2), "p99", lat[Math.floor(n * 0.99)].toFixed(2));
