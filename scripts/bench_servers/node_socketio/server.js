// socket.io on Node with the chat server's room semantics, for scripts/bench_fanout.py.
//   npm install && node server.js --port 9003
// Events: `join` (room name; acked {op:"ok"}), `send` ({room, text, cid}; acked
// {op:"ack", room, seq, id, ts, dup}) and `message` to the room, the sender included.
// No accounts, no storage; websocket transport only.
"use strict";
const crypto = require("crypto");
const http = require("http");
const { Server } = require("socket.io");

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const port = Number(opt("--port", "9003"));
const host = opt("--host", "127.0.0.1");
const SENDER = { id: "u_" + crypto.randomBytes(8).toString("hex"), name: "bench", display: "bench", bot: true };

const server = http.createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404);
  res.end("ok");
});
const io = new Server(server, { transports: ["websocket"], serveClient: false, perMessageDeflate: false });
const seqs = new Map();

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (ack) ack({ op: "ok" });
  });
  socket.on("send", (data, ack) => {
    const room = data.room;
    const seq = (seqs.get(room) || 0) + 1;
    seqs.set(room, seq);
    const ts = Date.now();
    const id = "m_" + crypto.randomBytes(8).toString("hex");
    io.to(room).emit("message", {
      op: "message", room, seq, id, ts, from: SENDER, kind: "text", text: data.text, cid: data.cid,
    });
    if (ack) ack({ op: "ack", room, seq, id, ts, dup: false });
  });
});

server.listen(port, host, () => console.log(`node socket.io on http://${host}:${port}`));
