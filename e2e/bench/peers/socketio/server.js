// The Socket.IO peer: rooms and io.to(room).emit, nothing persisted.
//
//   client → "join" (room, ack)              → socket.join(room); ack()
//   client → "send" ({room, text}, ack)      → io.to(room).emit("message", {room, text}); ack()
//
// With REDIS_URL set, instances share rooms through @socket.io/redis-adapter (scenario f).
"use strict";

const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const io = new Server({ transports: ["websocket"], serveClient: false, perMessageDeflate: false });

async function main() {
  if (process.env.REDIS_URL) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: process.env.REDIS_URL });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack();
    });
    socket.on("send", (msg, ack) => {
      io.to(msg.room).emit("message", { room: msg.room, text: msg.text });
      if (typeof ack === "function") ack();
    });
  });
  io.listen(port);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
