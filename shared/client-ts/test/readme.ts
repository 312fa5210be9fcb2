// The bot of the README's third-party section, compiled (not run) so that it keeps working.

import { ConfabClient } from "@confab/client";

export async function bot(): Promise<void> {
  const confab = await ConfabClient.connect({ url: "http://127.0.0.1:8000", token: process.env.CONFAB_TOKEN! });
  confab.on("room.message", (message) => {
    if (message.text === "!ping") void confab.call("room.send", { room: message.room, text: "pong" });
  });
  await confab.call("room.join", { room: "lobby", history: 0 });
}
